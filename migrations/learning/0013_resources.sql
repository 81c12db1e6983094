-- Learning, part 3: the resource library. Articles, videos and templates with an access
-- level: public (everyone), registered (signed-in users), organization_members (members
-- of the resource's organization) and enrolled_students (students with an active or
-- completed enrollment in the resource's course, and the course's teaching team).
-- Drafts are seen only by the people who may write them. The policies below implement
-- exactly the rule of `domain::resource`, so a handler that forgot to check still shows
-- nothing more; the column rules keep a resource's author, organization and course
-- fixed for callers.

CREATE TABLE resources (
  id              uuid PRIMARY KEY,
  author_id       uuid NOT NULL,
  organization_id uuid,
  course_id       uuid REFERENCES courses (id) ON DELETE CASCADE,
  type            text NOT NULL CHECK (type IN ('article', 'video', 'template')),
  title           text NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
  description     text NOT NULL DEFAULT '' CHECK (length(description) <= 2000),
  body            text NOT NULL DEFAULT '' CHECK (length(body) <= 100000),
  content_url     text NOT NULL DEFAULT '' CHECK (length(content_url) <= 2048),
  tags            text[] NOT NULL DEFAULT '{}' CHECK (cardinality(tags) <= 20),
  access_level    text NOT NULL
                  CHECK (access_level IN ('public', 'registered', 'organization_members',
                                          'enrolled_students')),
  status          text NOT NULL DEFAULT 'draft' CHECK (status IN ('draft', 'published')),
  search_vector   tsvector GENERATED ALWAYS AS
                    (setweight(to_tsvector('english', title), 'A') ||
                     setweight(to_tsvector('english', description), 'B') ||
                     setweight(to_tsvector('english', body), 'C')) STORED,
  published_at    timestamptz,
  created_at      timestamptz NOT NULL DEFAULT now(),
  updated_at      timestamptz NOT NULL DEFAULT now(),
  -- An article is text; a video or a template lives at a URL.
  CHECK ((type = 'article') = (body <> '')),
  CHECK ((type = 'article') = (content_url = '')),
  CHECK (access_level <> 'organization_members' OR organization_id IS NOT NULL),
  CHECK (access_level <> 'enrolled_students' OR course_id IS NOT NULL),
  CHECK ((status = 'published') = (published_at IS NOT NULL))
);
CREATE INDEX resources_listing_idx ON resources (created_at DESC, id DESC) WHERE status = 'published';
CREATE INDEX resources_author_idx ON resources (author_id, created_at DESC);
CREATE INDEX resources_course_idx ON resources (course_id, created_at DESC) WHERE course_id IS NOT NULL;
CREATE INDEX resources_organization_idx ON resources (organization_id, created_at DESC)
  WHERE organization_id IS NOT NULL;
CREATE INDEX resources_tags_idx ON resources USING gin (tags);
CREATE INDEX resources_search_idx ON resources USING gin (search_vector);

-- The caller learns in the course: an active or completed enrollment. (is_enrolled of
-- 0004 counts any enrollment, pending, cancelled and refunded ones too: it keeps a
-- course visible to whoever has a row about it, which is not who may read its material.)
CREATE FUNCTION learns_in(course uuid) RETURNS boolean
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = learning, pg_temp AS $$
BEGIN
  RETURN EXISTS (SELECT 1 FROM enrollments e
                 WHERE e.course_id = course AND e.student_id = current_user_id()
                   AND e.status IN ('active', 'completed'));
END
$$;

-- The organization of a course, whatever the caller may see of it: a course's resources
-- belong to the course's organization.
CREATE FUNCTION course_organization(course uuid) RETURNS uuid
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = learning, pg_temp AS $$
BEGIN
  RETURN (SELECT c.organization_id FROM courses c WHERE c.id = course);
END
$$;

-- Who writes a resource (and sees its drafts): its author, its organization's admins, the
-- teaching team of its course with edit_content (the owner always), platform admins (the
-- privileged policy).
CREATE FUNCTION writes_resource(author uuid, organization uuid, course uuid) RETURNS boolean
LANGUAGE sql STABLE AS $$
  SELECT author = current_user_id()
      OR administers(organization)
      OR (course IS NOT NULL AND teaches(course, 'edit_content'))
$$;

-- Search and tag filters through their GIN indexes. Under row-level security PostgreSQL
-- applies a caller's condition before the policies only when its operators are
-- leakproof, and @@ and @> are not: a search would walk every row the listing index
-- holds and test each. This returns the ids of the resources matching them, whoever may
-- see them (only the service's roles may call it); the listing joins them on the primary
-- key (uuid equality is leakproof) and the policies keep what the caller may see.
CREATE FUNCTION resources_matching(query text, required_tags text[]) RETURNS SETOF uuid
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = learning, pg_temp ROWS 100 AS $$
BEGIN
  -- One statement per combination, so that each keeps a plan that uses its index (a
  -- generic plan of "query IS NULL OR ..." would not).
  IF query IS NULL THEN
    RETURN QUERY SELECT r.id FROM resources r WHERE r.tags @> required_tags;
  ELSIF coalesce(cardinality(required_tags), 0) = 0 THEN
    RETURN QUERY SELECT r.id FROM resources r
      WHERE r.search_vector @@ websearch_to_tsquery('english', query);
  ELSE
    RETURN QUERY SELECT r.id FROM resources r
      WHERE r.search_vector @@ websearch_to_tsquery('english', query)
        AND r.tags @> required_tags;
  END IF;
END
$$;

ALTER TABLE resources ENABLE ROW LEVEL SECURITY;

CREATE POLICY resources_privileged ON resources USING (is_privileged());
CREATE POLICY resources_published_read ON resources FOR SELECT
  USING (status = 'published'
         AND (access_level = 'public'
              OR (access_level = 'registered' AND current_user_id() IS NOT NULL)
              OR (access_level = 'organization_members' AND organization_id = current_org_id())
              OR (access_level = 'enrolled_students'
                  AND (learns_in(course_id) OR teaches(course_id)))));
CREATE POLICY resources_writer_read ON resources FOR SELECT
  USING (writes_resource(author_id, organization_id, course_id));
-- A new resource is the caller's own, in their organization; a course's resource needs a
-- place on the course's team (or its organization's admins); otherwise the instructor
-- role (or an organization admin for the organization's).
CREATE POLICY resources_author_insert ON resources FOR INSERT
  WITH CHECK (author_id = current_user_id()
              AND (organization_id IS NULL OR organization_id = current_org_id())
              AND CASE WHEN course_id IS NOT NULL
                       THEN teaches(course_id, 'edit_content') OR administers(organization_id)
                       ELSE has_session_role('instructor') OR administers(organization_id)
                  END);
CREATE POLICY resources_writer_update ON resources FOR UPDATE
  USING (writes_resource(author_id, organization_id, course_id))
  WITH CHECK (writes_resource(author_id, organization_id, course_id));
CREATE POLICY resources_writer_delete ON resources FOR DELETE
  USING (writes_resource(author_id, organization_id, course_id));

-- A resource's author, organization and course are fixed; a course's resource belongs to
-- the course's organization; publishing stamps the time. Platform admins and the
-- service's bookkeeping are not restrained.
CREATE FUNCTION resources_column_rules() RETURNS trigger
LANGUAGE plpgsql SET search_path = learning, pg_temp AS $$
BEGIN
  IF NOT acting_for_caller() OR is_privileged() THEN
    RETURN NEW;
  END IF;
  IF TG_OP = 'INSERT' THEN
    IF NEW.course_id IS NOT NULL
       AND NEW.organization_id IS DISTINCT FROM course_organization(NEW.course_id) THEN
      RAISE EXCEPTION 'a course''s resource belongs to the course''s organization'
        USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
  END IF;
  IF NEW.author_id <> OLD.author_id
     OR NEW.organization_id IS DISTINCT FROM OLD.organization_id
     OR NEW.course_id IS DISTINCT FROM OLD.course_id THEN
    RAISE EXCEPTION 'a resource''s author, organization and course are fixed'
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  RETURN NEW;
END
$$;
CREATE TRIGGER resources_column_rules BEFORE INSERT OR UPDATE ON resources
  FOR EACH ROW EXECUTE FUNCTION resources_column_rules();

REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA learning FROM PUBLIC;
