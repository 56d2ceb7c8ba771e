-- delivery-status-consumer: an event replayed after a crash and parked again bumps its existing dead letter
-- (looked up by source, kind and reference among parked rows) instead of adding a second one.
CREATE INDEX dead_letters_parked_reference ON dead_letters (source, kind, reference) WHERE status = 'parked';
