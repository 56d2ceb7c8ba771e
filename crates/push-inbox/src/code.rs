//! [`PushCode`]: what a Shopee push is about, by its `code`. Stored as `push_inbox.code` (INTEGER); this is the one
//! place a number meets its meaning.

use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::postgres::{PgArgumentBuffer, PgHasArrayType, PgTypeInfo, PgValueRef};
use sqlx::{Decode, Encode, Postgres, Type};

/// A push's `code`. The ones this service acts on are named; every other code is kept as it came.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PushCode {
    /// 3: an order changed status.
    OrderStatus,
    /// 4: a tracking number was assigned.
    TrackingNumber,
    /// Anything else (1 and 2 shop (de)authorized, 12 authorization about to expire, ...): stored, not acted on.
    Other(i32),
}

impl PushCode {
    /// The number Shopee sends.
    pub fn get(self) -> i32 {
        match self {
            Self::OrderStatus => 3,
            Self::TrackingNumber => 4,
            Self::Other(code) => code,
        }
    }
}

impl From<i32> for PushCode {
    fn from(code: i32) -> Self {
        match code {
            3 => Self::OrderStatus,
            4 => Self::TrackingNumber,
            other => Self::Other(other),
        }
    }
}

impl From<PushCode> for i32 {
    fn from(code: PushCode) -> Self {
        code.get()
    }
}

impl std::fmt::Display for PushCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.get())
    }
}

impl Type<Postgres> for PushCode {
    fn type_info() -> PgTypeInfo {
        <i32 as Type<Postgres>>::type_info()
    }
}

impl PgHasArrayType for PushCode {
    fn array_type_info() -> PgTypeInfo {
        <i32 as PgHasArrayType>::array_type_info()
    }
}

impl Encode<'_, Postgres> for PushCode {
    fn encode_by_ref(&self, buf: &mut PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
        <i32 as Encode<Postgres>>::encode_by_ref(&self.get(), buf)
    }
}

impl Decode<'_, Postgres> for PushCode {
    fn decode(value: PgValueRef<'_>) -> Result<Self, BoxDynError> {
        Ok(Self::from(<i32 as Decode<Postgres>>::decode(value)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_number_round_trips_and_only_3_and_4_are_named() {
        for n in [-1, 0, 1, 2, 3, 4, 5, 12, i32::MAX] {
            assert_eq!(PushCode::from(n).get(), n);
        }
        assert_eq!(PushCode::from(3), PushCode::OrderStatus);
        assert_eq!(PushCode::from(4), PushCode::TrackingNumber);
        assert_eq!(PushCode::from(12), PushCode::Other(12));
    }
}
