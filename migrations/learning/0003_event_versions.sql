-- Versions of the events of courses and of students' progress. A version taken from the
-- clock at transaction start lets a transaction that committed later carry a smaller
-- version, and consumers then drop the newest state. A counter bumped by the same UPDATE
-- that changes the row is ordered by the row lock, so it strictly increases in commit
-- order. It starts from the timestamps published so far (microseconds), so that events
-- published from now on are newer than every one that consumers have already applied.
ALTER TABLE courses ADD COLUMN version bigint NOT NULL DEFAULT 0;
UPDATE courses SET version = (extract(epoch FROM updated_at) * 1000000)::bigint;

ALTER TABLE student_progress ADD COLUMN version bigint NOT NULL DEFAULT 0;
UPDATE student_progress SET version = (extract(epoch FROM updated_at) * 1000000)::bigint;
