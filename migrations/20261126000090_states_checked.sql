-- Every state and kind stored as TEXT has a CHECK with the spellings of its Rust enum (each crate's tests compare
-- the two lists). The columns below had none.

-- Shopee's order status (domain::order::ShopeeOrderStatus). A status written before it was typed that the enum does
-- not know becomes UNKNOWN, as a new one is now; the push's payload keeps what Shopee sent.
UPDATE push_inbox SET order_status = 'UNKNOWN'
WHERE order_status NOT IN ('UNPAID', 'READY_TO_SHIP', 'PROCESSED', 'RETRY_SHIP', 'SHIPPED', 'TO_CONFIRM_RECEIVE',
                           'IN_CANCEL', 'CANCELLED', 'TO_RETURN', 'COMPLETED', 'INVOICE_PENDING', 'PENDING',
                           'UNKNOWN');
ALTER TABLE push_inbox ADD CONSTRAINT push_inbox_order_status
    CHECK (order_status IN ('UNPAID', 'READY_TO_SHIP', 'PROCESSED', 'RETRY_SHIP', 'SHIPPED', 'TO_CONFIRM_RECEIVE',
                            'IN_CANCEL', 'CANCELLED', 'TO_RETURN', 'COMPLETED', 'INVOICE_PENDING', 'PENDING',
                            'UNKNOWN'));

UPDATE orders SET shopee_status = 'UNKNOWN'
WHERE shopee_status NOT IN ('UNPAID', 'READY_TO_SHIP', 'PROCESSED', 'RETRY_SHIP', 'SHIPPED', 'TO_CONFIRM_RECEIVE',
                            'IN_CANCEL', 'CANCELLED', 'TO_RETURN', 'COMPLETED', 'INVOICE_PENDING', 'PENDING',
                            'UNKNOWN');
ALTER TABLE orders ADD CONSTRAINT orders_shopee_status
    CHECK (shopee_status IN ('UNPAID', 'READY_TO_SHIP', 'PROCESSED', 'RETRY_SHIP', 'SHIPPED', 'TO_CONFIRM_RECEIVE',
                             'IN_CANCEL', 'CANCELLED', 'TO_RETURN', 'COMPLETED', 'INVOICE_PENDING', 'PENDING',
                             'UNKNOWN'));

-- What a dead letter is (dead_letters::DeadLetterKind).
ALTER TABLE dead_letters ADD CONSTRAINT dead_letters_kind
    CHECK (kind IN ('inbox_push', 'order', 'price_update', 'inventory_update', 'delivery_event'));
