-- 0020_company_words: the words of the companies' names, for searches by
-- the start of a word (issue 12), which the trigram indexes of 0012 answer
-- slowly at a million companies: a broad part ("ма") has tens of thousands
-- of matches, read in name order until a page is full, and a long part
-- (a whole name) intersects the posting lists of common trigrams.
--
-- One row per word of a company's folded name (orgchat_fold, 0012):
-- * word: the word; suffix: the name from that word on, for the words after
--   the first (NULL for the first). A name holding "X Y" has a word, not
--   its first, starting with Y (suffix ^@ 'Y'): a part with spaces is looked
--   up by what follows its first space. Both are cut to 100 characters, so
--   that any name fits a btree entry; a query cuts what it looks for alike,
--   and rechecks the name itself.
-- * sort_name, sort_slug: the company's name_folded and slug, so that the
--   companies with a given word are read in the results' order (name, slug)
--   from one index, a page at a time.
-- The "C" collation makes the prefix conditions index ranges.
--
-- The rows are written by statement-level triggers from the statement's
-- rows (transition tables): a bulk import of a million companies fills
-- them in one INSERT ... SELECT (sorted as the words' index, which it then
-- fills in order), and a single company's write keeps its own right. Rows
-- are found again by their company's old name and slug, through the words'
-- index: no third index (nor a foreign key, which would need one) to
-- maintain on every import.

CREATE TABLE company_words (
    company_id  bigint NOT NULL,
    word        text COLLATE "C" NOT NULL,
    suffix      text COLLATE "C",
    sort_name   text NOT NULL,
    sort_slug   text NOT NULL
);

-- A word's companies in the results' order; the words starting with a part.
CREATE INDEX company_words_by_word ON company_words (word, sort_name, sort_slug)
    INCLUDE (company_id);
-- The companies with a word start (not the first) followed by given words.
CREATE INDEX company_words_by_suffix ON company_words (suffix) INCLUDE (company_id)
    WHERE suffix IS NOT NULL;

-- The words of a folded name, each with the name from it on (NULL for the first).
CREATE FUNCTION company_words_of(name_folded text) RETURNS TABLE (word text, suffix text)
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT left(w.word, 100),
           CASE WHEN w.i > 1 THEN left(array_to_string(p.parts[w.i:], ' '), 100) END
      FROM (SELECT string_to_array(name_folded, ' ') AS parts) p
     CROSS JOIN LATERAL unnest(p.parts) WITH ORDINALITY AS w(word, i)
$$;

CREATE FUNCTION companies_index_words() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO company_words (company_id, word, suffix, sort_name, sort_slug)
        SELECT n.id, w.word, w.suffix, n.name_folded, n.slug
          FROM new_companies n CROSS JOIN LATERAL company_words_of(n.name_folded) w
         ORDER BY 2, 4, 5;
    ELSIF TG_OP = 'DELETE' THEN
        DELETE FROM company_words cw
         USING old_companies o CROSS JOIN LATERAL company_words_of(o.name_folded) w
         WHERE (cw.word, cw.sort_name, cw.sort_slug) = (w.word, o.name_folded, o.slug);
    ELSE  -- only the companies whose name or slug changed: their rows replaced
        WITH renamed AS (
            SELECT n.id, n.name_folded, n.slug, o.name_folded AS old_name, o.slug AS old_slug
              FROM new_companies n JOIN old_companies o ON o.id = n.id
             WHERE (n.name_folded, n.slug) IS DISTINCT FROM (o.name_folded, o.slug)
        ), replaced AS (
            DELETE FROM company_words cw
             USING renamed r CROSS JOIN LATERAL company_words_of(r.old_name) w
             WHERE (cw.word, cw.sort_name, cw.sort_slug) = (w.word, r.old_name, r.old_slug)
        )
        INSERT INTO company_words (company_id, word, suffix, sort_name, sort_slug)
        SELECT r.id, w.word, w.suffix, r.name_folded, r.slug
          FROM renamed r CROSS JOIN LATERAL company_words_of(r.name_folded) w
         ORDER BY 2, 4, 5;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER companies_index_words_insert
    AFTER INSERT ON companies REFERENCING NEW TABLE AS new_companies
    FOR EACH STATEMENT EXECUTE FUNCTION companies_index_words();
CREATE TRIGGER companies_index_words_update
    AFTER UPDATE ON companies REFERENCING OLD TABLE AS old_companies NEW TABLE AS new_companies
    FOR EACH STATEMENT EXECUTE FUNCTION companies_index_words();
CREATE TRIGGER companies_index_words_delete
    AFTER DELETE ON companies REFERENCING OLD TABLE AS old_companies
    FOR EACH STATEMENT EXECUTE FUNCTION companies_index_words();

CREATE FUNCTION companies_truncate_words() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    TRUNCATE company_words;
    RETURN NULL;
END $$;

CREATE TRIGGER companies_truncate_words
    AFTER TRUNCATE ON companies FOR EACH STATEMENT EXECUTE FUNCTION companies_truncate_words();

-- The companies already there.
INSERT INTO company_words (company_id, word, suffix, sort_name, sort_slug)
SELECT c.id, w.word, w.suffix, c.name_folded, c.slug
  FROM companies c CROSS JOIN LATERAL company_words_of(c.name_folded) w
 ORDER BY 2, 4, 5;
