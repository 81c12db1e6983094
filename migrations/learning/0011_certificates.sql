-- Certificates for completed courses and attended workshops, and the names of their
-- recipients (from identity's user events) for public verification.

-- Users' names as identity publishes them; newer versions only.
CREATE TABLE user_directory (
  user_id    uuid PRIMARY KEY,
  full_name  text NOT NULL DEFAULT '',
  version    bigint NOT NULL DEFAULT 0,
  updated_at timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE user_directory ENABLE ROW LEVEL SECURITY;
-- Written and read by the service's bookkeeping only (verification reads it through
-- verify_certificate()).
CREATE POLICY user_directory_privileged ON user_directory USING (is_privileged());

CREATE TABLE certificates (
  id               uuid PRIMARY KEY,
  number           text NOT NULL UNIQUE
                   CHECK (number ~ '^CERT-(COURSE|WORKSHOP)-[0-9]{8}-[0-9A-Z]{12}$'),
  user_id          uuid NOT NULL,
  certificate_type text NOT NULL CHECK (certificate_type IN ('course', 'workshop')),
  course_id        uuid REFERENCES courses (id),
  workshop_id      uuid REFERENCES workshops (id),
  -- Copied from the course or workshop so that policies need no join.
  instructor_id    uuid NOT NULL,
  organization_id  uuid,
  title            text NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
  skills           text[] NOT NULL DEFAULT '{}' CHECK (cardinality(skills) <= 20),
  issued_at        timestamptz NOT NULL DEFAULT now(),
  expires_at       timestamptz,
  -- NULL when issued automatically.
  issued_by        uuid,
  revoked_at       timestamptz,
  revoke_reason    text CHECK (length(revoke_reason) BETWEEN 1 AND 1000),
  CHECK ((certificate_type = 'course') = (course_id IS NOT NULL)),
  CHECK ((certificate_type = 'workshop') = (workshop_id IS NOT NULL)),
  CHECK ((revoked_at IS NULL) = (revoke_reason IS NULL)),
  CHECK (expires_at IS NULL OR expires_at > issued_at)
);
-- One live certificate per user and course or workshop: a completion delivered twice
-- issues once; a revoked certificate stays as history and a new one may follow it.
CREATE UNIQUE INDEX certificates_live_course_key ON certificates (user_id, course_id)
  WHERE course_id IS NOT NULL AND revoked_at IS NULL;
CREATE UNIQUE INDEX certificates_live_workshop_key ON certificates (user_id, workshop_id)
  WHERE workshop_id IS NOT NULL AND revoked_at IS NULL;
CREATE INDEX certificates_user_idx ON certificates (user_id, issued_at DESC, id DESC);

ALTER TABLE certificates ENABLE ROW LEVEL SECURITY;

-- The team of the certificate's course or workshop.
CREATE FUNCTION runs_certified(course uuid, workshop uuid) RETURNS boolean
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = learning, pg_temp AS $$
BEGIN
  IF course IS NOT NULL THEN
    RETURN teaches(course) OR EXISTS (SELECT 1 FROM courses c WHERE c.id = course
                                      AND administers(c.organization_id));
  END IF;
  RETURN workshop IS NOT NULL AND runs_workshop(workshop);
END
$$;

CREATE POLICY certificates_privileged ON certificates USING (is_privileged());
CREATE POLICY certificates_recipient_read ON certificates FOR SELECT
  USING (user_id = current_user_id());
CREATE POLICY certificates_team_read ON certificates FOR SELECT
  USING (runs_certified(course_id, workshop_id));
CREATE POLICY certificates_team_issue ON certificates FOR INSERT
  WITH CHECK (runs_certified(course_id, workshop_id) AND issued_by = current_user_id());
CREATE POLICY certificates_team_revoke ON certificates FOR UPDATE
  USING (runs_certified(course_id, workshop_id))
  WITH CHECK (runs_certified(course_id, workshop_id));

-- A caller changes a certificate only by revoking it, once.
CREATE FUNCTION certificates_column_rules() RETURNS trigger
LANGUAGE plpgsql SET search_path = learning, pg_temp AS $$
BEGIN
  IF NOT acting_for_caller() OR is_privileged() THEN
    RETURN NEW;
  END IF;
  IF TG_OP = 'INSERT' THEN
    IF NEW.revoked_at IS NOT NULL THEN
      RAISE EXCEPTION 'a certificate is issued valid' USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
  END IF;
  IF OLD.revoked_at IS NOT NULL
     OR (NEW.id, NEW.number, NEW.user_id, NEW.certificate_type, NEW.course_id, NEW.workshop_id,
         NEW.instructor_id, NEW.organization_id, NEW.title, NEW.skills, NEW.issued_at,
         NEW.expires_at, NEW.issued_by)
        IS DISTINCT FROM
        (OLD.id, OLD.number, OLD.user_id, OLD.certificate_type, OLD.course_id, OLD.workshop_id,
         OLD.instructor_id, OLD.organization_id, OLD.title, OLD.skills, OLD.issued_at,
         OLD.expires_at, OLD.issued_by) THEN
    RAISE EXCEPTION 'a certificate is only revoked, once' USING ERRCODE = 'insufficient_privilege';
  END IF;
  RETURN NEW;
END
$$;
CREATE TRIGGER certificates_column_rules BEFORE INSERT OR UPDATE ON certificates
  FOR EACH ROW EXECUTE FUNCTION certificates_column_rules();

-- Public verification by number: only what a certificate shows.
CREATE FUNCTION verify_certificate(certificate_number text,
  OUT number text, OUT recipient_name text, OUT certificate_type text, OUT title text,
  OUT skills text[], OUT issued_at timestamptz, OUT expires_at timestamptz,
  OUT revoked_at timestamptz)
RETURNS SETOF record
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = learning, pg_temp AS $$
  SELECT c.number, coalesce(d.full_name, ''), c.certificate_type, c.title, c.skills,
         c.issued_at, c.expires_at, c.revoked_at
  FROM certificates c LEFT JOIN user_directory d ON d.user_id = c.user_id
  WHERE c.number = certificate_number
$$;

-- What a manual issue needs to know of its source, whatever the caller may see: the
-- user completed the course or attended the workshop.
CREATE FUNCTION has_completed(course uuid, workshop uuid, learner uuid) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = learning, pg_temp AS $$
  SELECT CASE
    WHEN course IS NOT NULL THEN EXISTS (
      SELECT 1 FROM enrollments e WHERE e.course_id = course AND e.student_id = learner
        AND e.status = 'completed')
    ELSE EXISTS (
      SELECT 1 FROM workshop_registrations r WHERE r.workshop_id = workshop
        AND r.user_id = learner AND r.status = 'completed')
  END
$$;

REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA learning FROM PUBLIC;
