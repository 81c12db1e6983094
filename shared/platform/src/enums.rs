//! One representation per status field: a Rust enum stored as text and mirrored by a
//! proto enum. [`text_enum!`] writes the three conversions once for every such field.

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
/// The proto's `UNSPECIFIED` (and any unknown number) is rejected by `from_proto`.
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
    };
}
