-- A refresh token Shopee refused (spent, revoked, expired) is never offered again: every later caller, in any
-- replica, fails fast with the recorded reason instead of calling Shopee (a refresh storm of certain failures).
-- A new authorization bumps `generation`, which lifts the mark.
ALTER TABLE shop_tokens
    ADD COLUMN refresh_refused_generation BIGINT,
    ADD COLUMN refresh_refused_reason     TEXT;
