-- 0022_text_xml_can_carry: no stored text the component writes into stanzas
-- holds a character XML cannot carry.
--
-- Company cards, away messages, canned replies and desk notes reach agents'
-- and customers' clients inside stanzas. A control character other than tab,
-- line feed and carriage return (or U+FFFE, U+FFFF) cannot be written in XML
-- at all: ejabberd would close the component's stream on it, and every
-- process would stumble on it again. What people and operators type is
-- refused since (component/cli_common.py check_text, and XML input cannot
-- carry one); this removes those stored before. A name or text left empty
-- falls back to what the row still has (the slug, a dash); a canned reply's
-- title, unique in its company, gets its id after it. PostgreSQL's text
-- holds no NUL. Running it again changes nothing.

CREATE OR REPLACE FUNCTION pg_temp.xml_text(value text) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT regexp_replace(value, E'[\\x01-\\x08\\x0b\\x0c\\x0e-\\x1f\\uFFFE\\uFFFF]', '', 'g')
$$;

UPDATE companies
   SET name = coalesce(nullif(btrim(pg_temp.xml_text(name)), ''), slug),
       email = nullif(pg_temp.xml_text(email), ''),
       category = nullif(btrim(pg_temp.xml_text(category)), ''),
       city = nullif(btrim(pg_temp.xml_text(city)), ''),
       hours = nullif(pg_temp.xml_text(hours), ''),
       phone = nullif(pg_temp.xml_text(phone), ''),
       url = nullif(pg_temp.xml_text(url), ''),
       address = nullif(btrim(pg_temp.xml_text(address)), ''),
       away_message = nullif(pg_temp.xml_text(away_message), '')
 WHERE concat_ws(' ', name, email, category, city, hours, phone, url, address, away_message)
       <> pg_temp.xml_text(concat_ws(' ', name, email, category, city, hours, phone, url,
                                     address, away_message));

UPDATE canned_replies
   SET title = CASE WHEN title = pg_temp.xml_text(title) THEN title
                    ELSE coalesce(nullif(btrim(pg_temp.xml_text(title)), ''), 'reply')
                         || ' (' || id || ')' END,
       body = coalesce(nullif(btrim(pg_temp.xml_text(body)), ''), '-')
 WHERE title || ' ' || body <> pg_temp.xml_text(title || ' ' || body);

UPDATE desk_notes
   SET body = coalesce(nullif(btrim(pg_temp.xml_text(body)), ''), '-')
 WHERE body <> pg_temp.xml_text(body);
