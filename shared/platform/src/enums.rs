//! One representation per status field: a Rust enum stored as text and mirrored by a
//! proto enum. [`text_enum!`] writes the conversions once for every such field, the
//! database's included: the enum binds and decodes as PostgreSQL text, so rows carry the
//! enum, not a string (a text the enum does not know fails the row's decoding, naming
//! the column).

/// Declares an enum with its database text and its proto enum variant:
///
/// ```ignore
/// text_enum! {
///     pub enum UserStatus: proto::UserStatus {
///         Active = "active" => Active,
///         Suspended = "suspended" => Suspended,
///     }
/// }
/// ```
///
/// The proto's `UNSPECIFIED` (and any unknown number) is rejected by `from_proto`. In the
/// query macros, a column decodes into the enum through the crate's `sqlx.toml`
/// (`[macros.table-overrides]`) or a `"status: Status"` alias, and binds as `status as _`.
#[macro_export]
macro_rules! text_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident : $proto:ty {
            $($variant:ident = $text:literal => $proto_variant:ident),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        $vis enum $name {
            $($variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The text stored in the database.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }

            pub fn from_db(text: &str) -> Result<Self, String> {
                match text {
                    $($text => Ok($name::$variant),)+
                    other => Err(format!("unknown {} '{}'", stringify!($name), other)),
                }
            }

            pub fn from_proto(value: i32) -> Result<Self, String> {
                match <$proto>::try_from(value) {
                    $(Ok(<$proto>::$proto_variant) => Ok($name::$variant),)+
                    _ => Err(format!(
                        "must be one of: {}",
                        [$(stringify!($proto_variant)),+].join(", ")
                    )),
                }
            }

            pub fn to_proto(self) -> i32 {
                match self {
                    $($name::$variant => <$proto>::$proto_variant as i32),+
                }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl $crate::__sqlx::Type<$crate::__sqlx::Postgres> for $name {
            fn type_info() -> $crate::__sqlx::postgres::PgTypeInfo {
                <&str as $crate::__sqlx::Type<$crate::__sqlx::Postgres>>::type_info()
            }

            fn compatible(ty: &$crate::__sqlx::postgres::PgTypeInfo) -> bool {
                <&str as $crate::__sqlx::Type<$crate::__sqlx::Postgres>>::compatible(ty)
            }
        }

        impl $crate::__sqlx::postgres::PgHasArrayType for $name {
            fn array_type_info() -> $crate::__sqlx::postgres::PgTypeInfo {
                <&str as $crate::__sqlx::postgres::PgHasArrayType>::array_type_info()
            }
        }

        impl<'r> $crate::__sqlx::Decode<'r, $crate::__sqlx::Postgres> for $name {
            fn decode(
                value: $crate::__sqlx::postgres::PgValueRef<'r>,
            ) -> Result<Self, $crate::__sqlx::error::BoxDynError> {
                let text = <&str as $crate::__sqlx::Decode<$crate::__sqlx::Postgres>>::decode(value)?;
                Ok($name::from_db(text)?)
            }
        }

        impl $crate::__sqlx::Encode<'_, $crate::__sqlx::Postgres> for $name {
            fn encode_by_ref(
                &self,
                buf: &mut $crate::__sqlx::postgres::PgArgumentBuffer,
            ) -> Result<$crate::__sqlx::encode::IsNull, $crate::__sqlx::error::BoxDynError> {
                <&str as $crate::__sqlx::Encode<$crate::__sqlx::Postgres>>::encode(self.as_str(), buf)
            }
        }
    };
}
