-- Keys found to name one person (the referrals service's PersonsLinked): each
-- merged key names the surviving key's person, whose stored state holds the
-- observations of both, so they are counted once. Kept path-compressed.
CREATE TABLE indicator_person_links (
    merged_key    TEXT PRIMARY KEY,
    surviving_key TEXT NOT NULL,
    linked_at     TEXT NOT NULL
);
