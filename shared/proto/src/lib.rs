//! Generated code for every Lyceum protobuf package. No other crate runs codegen.

/// Encoded `FileDescriptorSet` of every package, for server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/lyceum_descriptor.bin"));

pub mod common {
    pub mod v1 {
        tonic::include_proto!("lyceum.common.v1");
    }
}

pub mod identity {
    pub mod v1 {
        tonic::include_proto!("lyceum.identity.v1");
    }
}

pub mod learning {
    pub mod v1 {
        tonic::include_proto!("lyceum.learning.v1");
        /// Defined once in `lyceum.common.v1`; named here too, where the package uses it.
        pub use crate::common::v1::Money;
    }
}

pub mod instructor {
    pub mod v1 {
        tonic::include_proto!("lyceum.instructor.v1");
        /// Defined once in `lyceum.common.v1`; named here too, where the package uses it.
        pub use crate::common::v1::Money;
    }
}

pub mod events {
    pub mod v1 {
        tonic::include_proto!("lyceum.events.v1");
    }
}
