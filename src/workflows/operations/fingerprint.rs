//! What makes two requests that share a `request_id` "the same request".
//!
//! A workflow feeds the fields of its validated request (normalized, so
//! `Lab.Example.TEST` and `lab.example.test` are one request) into a
//! [`RequestFingerprint`]; the engine stores the digest with the operation
//! and refuses a later request with the same id but another digest.
//! Secrets (credentials) are never fed in: a digest of a password in the
//! store could be brute-forced, and a retry may carry a rotated password.

use sha2::{Digest, Sha256};

/// A SHA-256 over the request's fields, each framed by name and length so
/// that no two different requests encode alike.
#[derive(Clone)]
pub struct RequestFingerprint(Sha256);

impl Default for RequestFingerprint {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for RequestFingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.hex())
    }
}

impl RequestFingerprint {
    pub fn new() -> Self {
        Self(Sha256::new())
    }

    fn frame(&mut self, bytes: &[u8]) {
        self.0.update((bytes.len() as u64).to_be_bytes());
        self.0.update(bytes);
    }

    /// A text field.
    #[must_use]
    pub fn text(mut self, name: &str, value: &str) -> Self {
        self.frame(name.as_bytes());
        self.frame(value.as_bytes());
        self
    }

    /// A list of texts, order included.
    #[must_use]
    pub fn list<S: AsRef<str>>(mut self, name: &str, values: &[S]) -> Self {
        self.frame(name.as_bytes());
        self.0.update((values.len() as u64).to_be_bytes());
        for value in values {
            self.frame(value.as_ref().as_bytes());
        }
        self
    }

    #[must_use]
    pub fn flag(self, name: &str, value: bool) -> Self {
        self.text(name, if value { "true" } else { "false" })
    }

    #[must_use]
    pub fn number(self, name: &str, value: u64) -> Self {
        self.text(name, &value.to_string())
    }

    /// A field-less enum value or a small value type, by its `Debug` form
    /// (the variant's name, stable as long as the variant keeps it).
    #[must_use]
    pub fn variant(self, name: &str, value: &impl std::fmt::Debug) -> Self {
        self.text(name, &format!("{value:?}"))
    }

    /// The digest as 64 hex digits.
    pub fn hex(&self) -> String {
        hex::encode(self.0.clone().finalize())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_fields_equal_digests_and_framing_separates_fields() {
        let a = RequestFingerprint::new().text("domain", "lab.test").hex();
        assert_eq!(
            a,
            RequestFingerprint::new().text("domain", "lab.test").hex()
        );
        assert_ne!(a, RequestFingerprint::new().text("domain", "lab.tes").hex());
        // "ab" + "c" is not "a" + "bc".
        let split1 = RequestFingerprint::new().text("x", "ab").text("y", "c");
        let split2 = RequestFingerprint::new().text("x", "a").text("y", "bc");
        assert_ne!(split1.hex(), split2.hex());
        let list1 = RequestFingerprint::new().list("l", &["a", "b"]).hex();
        let list2 = RequestFingerprint::new().list("l", &["b", "a"]).hex();
        assert_ne!(list1, list2);
        assert_eq!(a.len(), 64);
    }
}
