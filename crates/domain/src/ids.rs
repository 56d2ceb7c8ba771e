//! Identifiers. Each is checked once, where it enters the system.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize};

use crate::ParseError;

macro_rules! numeric_id {
    ($(#[$doc:meta])* $name:ident, $what:literal, min = $min:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
        #[serde(transparent)]
        pub struct $name(u64);

        impl $name {
            #[allow(unused_comparisons)]
            pub fn new(value: u64) -> Result<Self, ParseError> {
                if value < $min {
                    return Err(ParseError::new($what, format!("must be at least {}, got {value}", $min)));
                }
                if value > i64::MAX as u64 {
                    return Err(ParseError::new($what, "does not fit a signed 64-bit integer"));
                }
                Ok(Self(value))
            }
            pub fn get(self) -> u64 {
                self.0
            }
            /// For PostgreSQL `BIGINT` columns; always lossless (checked in `new`).
            pub fn as_i64(self) -> i64 {
                self.0 as i64
            }
            pub fn from_i64(value: i64) -> Result<Self, ParseError> {
                u64::try_from(value)
                    .map_err(|_| ParseError::new($what, format!("must not be negative, got {value}")))
                    .and_then(Self::new)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = ParseError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                let v: u64 = s.trim().parse().map_err(|_| ParseError::new($what, format!("`{s}` is not a whole number")))?;
                Self::new(v)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                Self::new(u64::deserialize(d)?).map_err(serde::de::Error::custom)
            }
        }
    };
}

numeric_id!(
    /// A Shopee shop (for Instant Mart: an outlet shop, one per hub).
    ShopId, "shop_id", min = 1
);
numeric_id!(
    /// A Shopee item (product).
    ItemId, "item_id", min = 1
);
numeric_id!(
    /// A Shopee model (variation); `0` stands for "the item has no models", as Shopee's price/stock APIs expect.
    ModelId, "model_id", min = 0
);

impl ModelId {
    pub const NONE: ModelId = ModelId(0);
}

macro_rules! text_id {
    ($(#[$doc:meta])* $name:ident, $what:literal, $check:expr, $rule:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn parse(raw: &str) -> Result<Self, ParseError> {
                let check: fn(&str) -> bool = $check;
                if check(raw) {
                    Ok(Self(raw.to_owned()))
                } else {
                    Err(ParseError::new($what, format!("`{}` does not match {}", truncate(raw), $rule)))
                }
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl FromStr for $name {
            type Err = ParseError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                Self::parse(&String::deserialize(d)?).map_err(serde::de::Error::custom)
            }
        }
    };
}

fn truncate(raw: &str) -> String {
    raw.chars().take(40).collect()
}

fn is_upper_alnum(c: char) -> bool {
    c.is_ascii_uppercase() || c.is_ascii_digit()
}

text_id!(
    /// A Shopee order number, e.g. `2511250ABCDEF`: 1–32 upper-case letters and digits.
    OrderSn,
    "order_sn",
    |s| (1..=32).contains(&s.len()) && s.chars().all(is_upper_alnum),
    "1-32 upper-case letters and digits"
);

text_id!(
    /// Our stock-keeping unit, e.g. `789100000001`: 1–64 of letters, digits, `.`, `_`, `-`.
    Sku,
    "sku",
    |s| (1..=64).contains(&s.len()) && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')),
    "1-64 letters, digits, '.', '_' or '-'"
);

text_id!(
    /// A hub (dark store), e.g. `SAO-01`: 1–32 upper-case letters, digits, `-`, `_`, starting with a letter or digit.
    HubId,
    "hub_id",
    |s| (1..=32).contains(&s.len())
        && s.starts_with(is_upper_alnum)
        && s.chars().all(|c| is_upper_alnum(c) || matches!(c, '-' | '_')),
    "1-32 upper-case letters, digits, '-' or '_'"
);

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn ids_reject_what_shopee_never_sends() {
        assert!(ShopId::new(0).is_err());
        assert!(ShopId::new(u64::MAX).is_err());
        assert_eq!(ModelId::new(0).unwrap(), ModelId::NONE);
        assert!(OrderSn::parse("2511250abcdef").is_err());
        assert!(OrderSn::parse("").is_err());
        assert!(Sku::parse("789 1").is_err());
        assert!(HubId::parse("-SAO").is_err());
        assert_eq!(HubId::parse("SAO-01").unwrap().as_str(), "SAO-01");
    }

    #[test]
    fn ids_deserialize_through_their_rules() {
        assert!(serde_json::from_str::<ShopId>("0").is_err());
        assert_eq!(serde_json::from_str::<ShopId>("900001").unwrap().get(), 900001);
        let err = serde_json::from_str::<Sku>("\"a b\"").unwrap_err().to_string();
        assert!(err.contains("invalid sku"), "{err}");
    }

    proptest! {
        #[test]
        fn valid_skus_round_trip(s in "[A-Za-z0-9._-]{1,64}") {
            let sku = Sku::parse(&s).unwrap();
            prop_assert_eq!(sku.as_str(), s.as_str());
            let json = serde_json::to_string(&sku).unwrap();
            prop_assert_eq!(serde_json::from_str::<Sku>(&json).unwrap(), sku);
        }

        #[test]
        fn order_sn_accepts_exactly_its_alphabet(s in "\\PC{0,40}") {
            let ok = (1..=32).contains(&s.len()) && s.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
            prop_assert_eq!(OrderSn::parse(&s).is_ok(), ok);
        }

        #[test]
        fn shop_id_i64_round_trip(v in 1u64..=(i64::MAX as u64)) {
            let id = ShopId::new(v).unwrap();
            prop_assert_eq!(ShopId::from_i64(id.as_i64()).unwrap(), id);
        }
    }
}
