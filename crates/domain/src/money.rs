//! Money in integer centavos (BRL). Parsed from decimal text, never through floating-point arithmetic.

use std::fmt;
use std::ops::Add;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::ParseError;

/// A non-negative amount of BRL, in centavos.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Money(i64);

/// The largest amount we accept: R$ 1 billion, far above any order, far below overflow.
const MAX_CENTAVOS: i64 = 100_000_000_000;

impl Money {
    pub const ZERO: Money = Money(0);

    pub fn from_centavos(centavos: i64) -> Result<Self, ParseError> {
        if !(0..=MAX_CENTAVOS).contains(&centavos) {
            return Err(ParseError::new(
                "money",
                format!("{centavos} centavos is out of range"),
            ));
        }
        Ok(Self(centavos))
    }

    pub fn centavos(self) -> i64 {
        self.0
    }

    /// Parses our events' decimal strings: `"12.90"`, `"12.9"`, `"12"`. At most two decimals; no sign, no exponent.
    pub fn parse_decimal(raw: &str) -> Result<Self, ParseError> {
        parse(raw, Rounding::Reject)
    }

    /// Parses a Shopee decimal number (JSON number), using its shortest decimal text so `12.9` is exactly 1290
    /// centavos. More than two decimals are rounded half-up to the centavo.
    pub fn from_shopee_number(number: &serde_json::Number) -> Result<Self, ParseError> {
        if let Some(i) = number.as_u64() {
            return i64::try_from(i)
                .ok()
                .and_then(|i| i.checked_mul(100))
                .ok_or_else(|| ParseError::new("money", format!("{i} is out of range")))
                .and_then(Self::from_centavos);
        }
        let text = number.to_string();
        parse(&text, Rounding::HalfUp)
    }

    /// `self x quantity`, or `None` on overflow.
    pub fn times(self, quantity: u32) -> Option<Money> {
        self.0
            .checked_mul(i64::from(quantity))
            .filter(|c| *c <= MAX_CENTAVOS)
            .map(Money)
    }

    pub fn checked_sub(self, other: Money) -> Option<Money> {
        self.0.checked_sub(other.0).filter(|c| *c >= 0).map(Money)
    }

    /// A fraction of an amount rounded half-up to the centavo: `self x numerator / denominator`.
    pub fn mul_ratio_half_up(self, numerator: u64, denominator: u64) -> Option<Money> {
        if denominator == 0 {
            return None;
        }
        let n = i128::from(self.0) * i128::from(numerator);
        let d = i128::from(denominator);
        let rounded = (2 * n + d) / (2 * d);
        i64::try_from(rounded)
            .ok()
            .filter(|c| *c <= MAX_CENTAVOS)
            .map(Money)
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Rounding {
    Reject,
    HalfUp,
}

fn parse(raw: &str, rounding: Rounding) -> Result<Money, ParseError> {
    let bad = |why: &str| {
        ParseError::new(
            "money",
            format!("`{}` {why}", raw.chars().take(32).collect::<String>()),
        )
    };
    let s = raw.trim();
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad("is not a non-negative decimal number like 12.90"));
    }
    if s.contains('.') && frac.is_empty() || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad("is not a non-negative decimal number like 12.90"));
    }
    if frac.len() > 2 && rounding == Rounding::Reject {
        return Err(bad("has more than two decimal places"));
    }
    if whole.len() > 12 {
        return Err(bad("is out of range"));
    }
    let whole: i64 = whole.parse().map_err(|_| bad("is out of range"))?;
    let digit = |i: usize| frac.as_bytes().get(i).map_or(0, |b| i64::from(b - b'0'));
    let mut centavos = whole * 100 + digit(0) * 10 + digit(1);
    if digit(2) >= 5 {
        centavos += 1;
    }
    Money::from_centavos(centavos).map_err(|_| bad("is out of range"))
}

impl Add for Money {
    type Output = Money;
    /// Saturates at the maximum; amounts here are bounded far below it.
    fn add(self, rhs: Money) -> Money {
        Money(self.0.saturating_add(rhs.0).min(MAX_CENTAVOS))
    }
}

impl std::iter::Sum for Money {
    fn sum<I: Iterator<Item = Money>>(iter: I) -> Money {
        iter.fold(Money::ZERO, Add::add)
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:02}", self.0 / 100, self.0 % 100)
    }
}

impl FromStr for Money {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse_decimal(s)
    }
}

/// Serialized as our events write money: a decimal string, `"12.90"`.
impl Serialize for Money {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Money {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Money::parse_decimal(&raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn shopee(n: &str) -> Result<Money, ParseError> {
        Money::from_shopee_number(&serde_json::from_str::<serde_json::Number>(n).unwrap())
    }

    #[test]
    fn decimal_strings() {
        assert_eq!(Money::parse_decimal("12.90").unwrap().centavos(), 1290);
        assert_eq!(Money::parse_decimal("12.9").unwrap().centavos(), 1290);
        assert_eq!(Money::parse_decimal("12").unwrap().centavos(), 1200);
        assert_eq!(Money::parse_decimal("0.01").unwrap().centavos(), 1);
        for bad in [
            "",
            "-1.00",
            "1.",
            ".5",
            "1.234",
            "1e3",
            "12,90",
            "abc",
            "9999999999999.00",
        ] {
            assert!(Money::parse_decimal(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn shopee_numbers_have_no_float_drift() {
        // 0.1 + 0.2 style values: each parsed from its shortest decimal text.
        assert_eq!(shopee("0.29").unwrap().centavos(), 29);
        assert_eq!(shopee("12.9").unwrap().centavos(), 1290);
        assert_eq!(shopee("1005.57").unwrap().centavos(), 100557);
        assert_eq!(shopee("25").unwrap().centavos(), 2500);
        assert_eq!(shopee("4.995").unwrap().centavos(), 500);
        assert!(shopee("-1.5").is_err());
    }

    #[test]
    fn display_and_arithmetic() {
        let m = Money::parse_decimal("12.90").unwrap();
        assert_eq!(m.to_string(), "12.90");
        assert_eq!(m.times(2).unwrap().to_string(), "25.80");
        assert_eq!(serde_json::to_string(&m).unwrap(), "\"12.90\"");
        assert_eq!(Money::from_centavos(5).unwrap().to_string(), "0.05");
        assert_eq!(
            Money::parse_decimal("1.10")
                .unwrap()
                .mul_ratio_half_up(2345, 1000)
                .unwrap()
                .centavos(),
            258
        );
    }

    proptest! {
        #[test]
        fn text_round_trip(c in 0i64..=MAX_CENTAVOS) {
            let m = Money::from_centavos(c).unwrap();
            prop_assert_eq!(Money::parse_decimal(&m.to_string()).unwrap(), m);
        }

        #[test]
        fn shopee_float_round_trip(c in 0i64..=10_000_000_000i64) {
            // What Shopee sends for c centavos is the f64 nearest c/100; we must get c back exactly.
            let f = c as f64 / 100.0;
            let n = serde_json::Number::from_f64(f).unwrap();
            prop_assert_eq!(Money::from_shopee_number(&n).unwrap().centavos(), c);
        }

        #[test]
        fn garbage_never_panics(s in "\\PC{0,20}") {
            let _ = Money::parse_decimal(&s);
        }
    }
}
