//! Ids that cannot be swapped: a store function that takes a course and a student takes a
//! `CourseId` and a `UserId`, so passing them the wrong way round does not compile.
//! [`typed_id!`] declares such a newtype over [`uuid::Uuid`], bound and decoded as the
//! uuid itself.

/// Declares newtypes over [`uuid::Uuid`], one per entity:
///
/// ```ignore
/// typed_id! {
///     /// A course.
///     pub struct CourseId;
///     /// A user: students and instructors alike.
///     pub struct UserId;
/// }
/// ```
///
/// Each converts from and into `Uuid` (`new`/`get`, `From` both ways), displays as the
/// uuid, and binds and decodes as PostgreSQL `uuid`. In the query macros, pass
/// `id.get()`: the macros then check the parameter's type as before.
#[macro_export]
macro_rules! typed_id {
    ($($(#[$meta:meta])* $vis:vis struct $name:ident;)+) => {
        $(
            $(#[$meta])*
            #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
            $vis struct $name($crate::__uuid::Uuid);

            impl $name {
                pub const fn new(id: $crate::__uuid::Uuid) -> Self {
                    Self(id)
                }

                pub const fn get(self) -> $crate::__uuid::Uuid {
                    self.0
                }
            }

            impl ::std::convert::From<$crate::__uuid::Uuid> for $name {
                fn from(id: $crate::__uuid::Uuid) -> Self {
                    Self(id)
                }
            }

            impl ::std::convert::From<$name> for $crate::__uuid::Uuid {
                fn from(id: $name) -> Self {
                    id.0
                }
            }

            impl ::std::fmt::Display for $name {
                fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                    ::std::fmt::Display::fmt(&self.0, f)
                }
            }

            impl $crate::__sqlx::Type<$crate::__sqlx::Postgres> for $name {
                fn type_info() -> $crate::__sqlx::postgres::PgTypeInfo {
                    <$crate::__uuid::Uuid as $crate::__sqlx::Type<$crate::__sqlx::Postgres>>::type_info()
                }

                fn compatible(ty: &$crate::__sqlx::postgres::PgTypeInfo) -> bool {
                    <$crate::__uuid::Uuid as $crate::__sqlx::Type<$crate::__sqlx::Postgres>>::compatible(ty)
                }
            }

            impl $crate::__sqlx::postgres::PgHasArrayType for $name {
                fn array_type_info() -> $crate::__sqlx::postgres::PgTypeInfo {
                    <$crate::__uuid::Uuid as $crate::__sqlx::postgres::PgHasArrayType>::array_type_info()
                }
            }

            impl<'r> $crate::__sqlx::Decode<'r, $crate::__sqlx::Postgres> for $name {
                fn decode(
                    value: $crate::__sqlx::postgres::PgValueRef<'r>,
                ) -> Result<Self, $crate::__sqlx::error::BoxDynError> {
                    <$crate::__uuid::Uuid as $crate::__sqlx::Decode<$crate::__sqlx::Postgres>>::decode(value)
                        .map(Self)
                }
            }

            impl $crate::__sqlx::Encode<'_, $crate::__sqlx::Postgres> for $name {
                fn encode_by_ref(
                    &self,
                    buf: &mut $crate::__sqlx::postgres::PgArgumentBuffer,
                ) -> Result<$crate::__sqlx::encode::IsNull, $crate::__sqlx::error::BoxDynError> {
                    <$crate::__uuid::Uuid as $crate::__sqlx::Encode<$crate::__sqlx::Postgres>>::encode_by_ref(&self.0, buf)
                }

                fn size_hint(&self) -> usize {
                    <$crate::__uuid::Uuid as $crate::__sqlx::Encode<$crate::__sqlx::Postgres>>::size_hint(&self.0)
                }
            }
        )+
    };
}

#[cfg(test)]
mod tests {
    use sqlx::postgres::{PgHasArrayType, Postgres};
    use sqlx::{Encode, Type};
    use uuid::Uuid;

    crate::typed_id! {
        /// A course, for the tests.
        pub struct CourseId;
        pub(crate) struct UserId;
    }

    #[test]
    fn an_id_round_trips_through_its_uuid_and_displays_as_it() {
        let uuid = Uuid::now_v7();
        let id = CourseId::new(uuid);
        assert_eq!(id.get(), uuid);
        assert_eq!(Uuid::from(id), uuid);
        assert_eq!(CourseId::from(uuid), id);
        assert_eq!(id.to_string(), uuid.to_string());
        assert_eq!(UserId::new(uuid).get(), CourseId::new(uuid).get());
    }

    #[test]
    fn an_id_orders_as_its_uuid() {
        let (first, second) = (Uuid::now_v7(), Uuid::now_v7());
        assert!(first < second);
        assert!(CourseId::new(first) < CourseId::new(second));
    }

    #[test]
    fn an_id_binds_as_a_uuid() {
        assert_eq!(
            <CourseId as Type<Postgres>>::type_info(),
            <Uuid as Type<Postgres>>::type_info()
        );
        assert_eq!(
            <CourseId as PgHasArrayType>::array_type_info(),
            <Uuid as PgHasArrayType>::array_type_info()
        );
        let uuid = Uuid::now_v7();
        let mut typed = sqlx::postgres::PgArgumentBuffer::default();
        let mut plain = sqlx::postgres::PgArgumentBuffer::default();
        assert!(
            !CourseId::new(uuid)
                .encode_by_ref(&mut typed)
                .unwrap()
                .is_null()
        );
        assert!(!uuid.encode_by_ref(&mut plain).unwrap().is_null());
        assert_eq!(&*typed, &*plain);
    }
}
