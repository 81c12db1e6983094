-- Profiles and settings belong to instructors: the service refuses other callers, and so
-- does the database, as a second wall. A caller still reads and removes only their own;
-- writing one needs the instructor role in the caller's context.
DROP POLICY instructor_profiles_own ON instructor_profiles;
CREATE POLICY instructor_profiles_own ON instructor_profiles
  USING (instructor_id = current_user_id())
  WITH CHECK (instructor_id = current_user_id() AND has_session_role('instructor'));

DROP POLICY instructor_settings_own ON instructor_settings;
CREATE POLICY instructor_settings_own ON instructor_settings
  USING (instructor_id = current_user_id())
  WITH CHECK (instructor_id = current_user_id() AND has_session_role('instructor'));
