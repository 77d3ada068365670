-- 0014: users' own archives (0013) with the two indexes their queries use.
--
-- Every message writes one row per account that sees it, in the archive
-- statement of the hot path, so each index costs on every message.
-- ejabberd's mod_mam reads a user's archive by (server_host, username)
-- ordered by timestamp, with `with` = a bare JID in practice (clients ask
-- for a contact), which the second index serves in timestamp order. The two
-- others of ejabberd's schema serve a `with` that is a full JID (rare here:
-- the (server_host, username, timestamp) index still finds those rows) and
-- ejabberd's own expiry by time across users, which orgchat does not use.

DROP INDEX i_archive_sh_username_peer;
DROP INDEX i_archive_sh_timestamp;
DROP INDEX i_archive_sh_username_bare_peer;
CREATE INDEX i_archive_sh_username_bare_peer_timestamp
    ON archive USING btree (server_host, username, bare_peer, timestamp);
