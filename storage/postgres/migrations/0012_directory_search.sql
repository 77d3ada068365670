-- 0012_directory_search: the directory searched in PostgreSQL, through indexes
-- (issue 12), instead of a scan of every company in every component process.
--
-- * orgchat_fold(text): the form searches compare, lower case with runs of
--   white space made one space and none around. The folded columns below and
--   every query fold with it, so that both sides are folded alike.
-- * name_folded, category_folded, city_folded: generated columns.
-- * pg_trgm GIN indexes answer "any part of the name (the slug, the
--   category)"; btree indexes in the order results are listed (by name, then
--   slug) answer "whole category / city" and the broad queries, which stop
--   after a page instead of sorting every match.
-- pg_trgm is a trusted extension (PostgreSQL 13+): the database owner may
-- create it.

CREATE EXTENSION IF NOT EXISTS pg_trgm;

CREATE FUNCTION orgchat_fold(value text) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN lower(btrim(regexp_replace(value, '\s+', ' ', 'g')));

ALTER TABLE companies
    ADD COLUMN name_folded text GENERATED ALWAYS AS (orgchat_fold(name)) STORED,
    ADD COLUMN category_folded text GENERATED ALWAYS AS (orgchat_fold(category)) STORED,
    ADD COLUMN city_folded text GENERATED ALWAYS AS (orgchat_fold(city)) STORED;

CREATE INDEX companies_name_trgm ON companies USING gin (name_folded gin_trgm_ops);
CREATE INDEX companies_slug_trgm ON companies USING gin (slug gin_trgm_ops);
CREATE INDEX companies_category_trgm ON companies USING gin (category_folded gin_trgm_ops);
CREATE INDEX companies_by_name ON companies (name_folded, slug);
CREATE INDEX companies_by_category ON companies (category_folded, city_folded, name_folded, slug);
CREATE INDEX companies_by_city ON companies (city_folded, name_folded, slug);
