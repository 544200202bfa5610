//! Generated code for the `provd.v1` contract (see `proto/provd/v1/`), plus the
//! few hand-written impls generated types need: a redacted `Debug` and a
//! zeroizing `Drop` for [`v1::Credential`].

#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod v1 {
    tonic::include_proto!("provd.v1");
    include!(concat!(env!("OUT_DIR"), "/provd.v1.serde.rs"));
}

/// Encoded `FileDescriptorSet` of every provd.v1 file, served by reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("provd_descriptor");

impl std::fmt::Debug for v1::Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

impl Drop for v1::Credential {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.password);
    }
}
