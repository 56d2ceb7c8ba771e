//! Enums stored in PostgreSQL as TEXT, mapped in one place each.
//!
//! [`text_enum!`] declares an enum from a list of `Variant = "text"`: `as_str` / `FromStr` / `Display`, serde, the
//! sqlx encoding and decoding (as TEXT, so a query binds the enum itself) and, with the `utoipa` feature, the
//! OpenAPI schema are all generated from that one list. Enums of the `domain` crate (which has no sqlx) are bound
//! through [`Text`]. [`check_lists`] reads a migration's CHECK constraints, so each crate's tests hold its enums to
//! the database's lists.

mod check;
mod text;

pub use check::check_lists;
pub use text::Text;

#[doc(hidden)]
pub mod __private {
    pub use serde;
    pub use sqlx;
    #[cfg(feature = "utoipa")]
    pub use utoipa;
}

/// A stored state the code does not know (the CHECK constraints make this a bug, not an input error).
#[derive(Debug, thiserror::Error)]
#[error("`{value}` is not a {kind}")]
pub struct UnknownState {
    pub kind: &'static str,
    pub value: String,
}

/// Declares an enum stored as PostgreSQL TEXT and shown in JSON as the same text.
#[macro_export]
macro_rules! text_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal,)+ }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        $vis enum $name { $($(#[$vmeta])* $variant,)+ }

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: &'static [Self] = &[$(Self::$variant,)+];

            /// The stored (and JSON) spelling.
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $text,)+ }
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::UnknownState;
            fn from_str(s: &str) -> ::std::result::Result<Self, Self::Err> {
                match s {
                    $($text => Ok(Self::$variant),)+
                    _ => Err($crate::UnknownState { kind: stringify!($name), value: s.to_owned() }),
                }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::std::convert::AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                self.as_str()
            }
        }

        impl $crate::__private::serde::Serialize for $name {
            fn serialize<S: $crate::__private::serde::Serializer>(
                &self,
                s: S,
            ) -> ::std::result::Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> $crate::__private::serde::Deserialize<'de> for $name {
            fn deserialize<D: $crate::__private::serde::Deserializer<'de>>(
                d: D,
            ) -> ::std::result::Result<Self, D::Error> {
                let text = <::std::borrow::Cow<'de, str> as $crate::__private::serde::Deserialize>::deserialize(d)?;
                text.parse().map_err(<D::Error as $crate::__private::serde::de::Error>::custom)
            }
        }

        impl $crate::__private::sqlx::Type<$crate::__private::sqlx::Postgres> for $name {
            fn type_info() -> $crate::__private::sqlx::postgres::PgTypeInfo {
                <&str as $crate::__private::sqlx::Type<$crate::__private::sqlx::Postgres>>::type_info()
            }
            fn compatible(ty: &$crate::__private::sqlx::postgres::PgTypeInfo) -> bool {
                <&str as $crate::__private::sqlx::Type<$crate::__private::sqlx::Postgres>>::compatible(ty)
            }
        }

        impl $crate::__private::sqlx::postgres::PgHasArrayType for $name {
            fn array_type_info() -> $crate::__private::sqlx::postgres::PgTypeInfo {
                <&str as $crate::__private::sqlx::postgres::PgHasArrayType>::array_type_info()
            }
        }

        impl $crate::__private::sqlx::Encode<'_, $crate::__private::sqlx::Postgres> for $name {
            fn encode_by_ref(
                &self,
                buf: &mut $crate::__private::sqlx::postgres::PgArgumentBuffer,
            ) -> ::std::result::Result<$crate::__private::sqlx::encode::IsNull, $crate::__private::sqlx::error::BoxDynError> {
                <&str as $crate::__private::sqlx::Encode<$crate::__private::sqlx::Postgres>>::encode_by_ref(
                    &self.as_str(),
                    buf,
                )
            }
        }

        impl $crate::__private::sqlx::Decode<'_, $crate::__private::sqlx::Postgres> for $name {
            fn decode(
                value: $crate::__private::sqlx::postgres::PgValueRef<'_>,
            ) -> ::std::result::Result<Self, $crate::__private::sqlx::error::BoxDynError> {
                Ok(<&str as $crate::__private::sqlx::Decode<$crate::__private::sqlx::Postgres>>::decode(value)?.parse()?)
            }
        }

        $crate::__schema!($name);
    };
}

/// The OpenAPI schema of a [`text_enum!`]: a string with the enum's spellings (feature `utoipa`).
#[cfg(feature = "utoipa")]
#[doc(hidden)]
#[macro_export]
macro_rules! __schema {
    ($name:ident) => {
        impl $crate::__private::utoipa::PartialSchema for $name {
            fn schema()
            -> $crate::__private::utoipa::openapi::RefOr<$crate::__private::utoipa::openapi::schema::Schema>
            {
                $crate::__private::utoipa::openapi::schema::ObjectBuilder::new()
                    .schema_type($crate::__private::utoipa::openapi::schema::Type::String)
                    .enum_values(Some(Self::ALL.iter().map(|v| v.as_str())))
                    .into()
            }
        }

        impl $crate::__private::utoipa::ToSchema for $name {}
    };
}

/// Without the `utoipa` feature a [`text_enum!`] has no OpenAPI schema.
#[cfg(not(feature = "utoipa"))]
#[doc(hidden)]
#[macro_export]
macro_rules! __schema {
    ($name:ident) => {};
}

text_enum! {
    /// `mapping_discovery_jobs.status` and `content_sync_jobs.status`: queued by campaign-api, run by
    /// catalog-sync-worker (the one crate both depend on for them).
    pub enum JobStatus {
        Queued = "queued",
        Running = "running",
        Done = "done",
        Failed = "failed",
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_text_enum_round_trips_through_text_json_and_refuses_strangers() {
        for s in JobStatus::ALL {
            assert_eq!(s.as_str().parse::<JobStatus>().unwrap(), *s);
            let json = serde_json::to_string(s).unwrap();
            assert_eq!(json, format!("\"{s}\""));
            assert_eq!(serde_json::from_str::<JobStatus>(&json).unwrap(), *s);
        }
        assert!(serde_json::from_str::<JobStatus>("\"paused\"").is_err());
        let err = "paused".parse::<JobStatus>().unwrap_err();
        assert_eq!(err.to_string(), "`paused` is not a JobStatus");
    }

    #[test]
    fn job_status_spellings_are_the_migration_checks() {
        let sql = include_str!("../../../migrations/20261126000040_catalog_sync.sql");
        let lists = check_lists(sql, "status");
        assert_eq!(lists.len(), 2, "mapping_discovery_jobs and content_sync_jobs");
        for list in lists {
            assert_eq!(
                list,
                JobStatus::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>()
            );
        }
    }
}
