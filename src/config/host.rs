//! `[host]`: where provd meets the agent on this machine.

use std::path::PathBuf;

use super::declare::section;
use super::layers::Source;
use super::parse;

section! {
    #[derive(Debug, Clone)]
    pub struct HostConfig: Default {
        /// The largest package Install copies into staging, in bytes (or
        /// with a KiB, MiB or GiB suffix). The real agent's package is about
        /// 20–30 MB; the cap stops a source that never ends (a link to
        /// /dev/zero, an endless pipe) from filling the disk.
        pub max_package_bytes: u64 {
            toml: "host.max_package_bytes", env: "PROVD_HOST_MAX_PACKAGE_BYTES",
            flag: "--host-max-package-bytes",
            example: "256MiB", parse: byte_size, default: 1 << 30
        }
        /// Let Install stream a package from a named pipe (FIFO); the size
        /// cap bounds it. Off by default: any other kind of file that is not
        /// a regular file is always refused.
        pub allow_fifo_packages: bool {
            toml: "host.allow_fifo_packages", env: "PROVD_HOST_ALLOW_FIFO_PACKAGES",
            flag: "--host-allow-fifo-packages",
            example: "true", parse: parse::boolean, default: false
        }
        /// CA bundle (PEM) to trust for `https://` package sources instead
        /// of the public web roots (an internal file server's CA).
        pub package_ca_file: Option<PathBuf> {
            toml: "host.package_ca_file", env: "PROVD_HOST_PACKAGE_CA_FILE",
            flag: "--host-package-ca-file",
            example: "/etc/provd/package-ca.pem", parse: parse::some_path, default: None
        }
        /// How many UploadPackage streams may write into staging at once;
        /// one more is UNAVAILABLE (retry later). Each holds one open file.
        pub max_concurrent_uploads: u32 {
            toml: "host.max_concurrent_uploads", env: "PROVD_HOST_MAX_CONCURRENT_UPLOADS",
            flag: "--host-max-concurrent-uploads",
            example: "8", parse: positive_count, default: 4
        }
    }
}

/// A count of at least one.
fn positive_count(value: &str, _: &Source) -> Result<u32, String> {
    match value.trim().parse::<u32>() {
        Ok(0) | Err(_) => Err(format!("{value:?} is not a whole number of at least 1")),
        Ok(n) => Ok(n),
    }
}

/// `1048576`, `64KiB`, `256MiB`, `1GiB`: more than zero bytes.
fn byte_size(value: &str, _: &Source) -> Result<u64, String> {
    let text = value.trim();
    let (digits, unit) = [("GiB", 1u64 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)]
        .into_iter()
        .find_map(|(suffix, unit)| text.strip_suffix(suffix).map(|d| (d.trim_end(), unit)))
        .unwrap_or((text, 1));
    let bytes = digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(unit))
        .ok_or_else(|| format!("{value:?} is not a size like \"1GiB\" or \"1048576\""))?;
    if bytes == 0 {
        return Err("must be more than zero bytes".into());
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_take_binary_suffixes_and_refuse_zero_and_overflow() {
        let size = |v| byte_size(v, &Source::Env);
        assert_eq!(size("1048576"), Ok(1 << 20));
        assert_eq!(size("64KiB"), Ok(64 << 10));
        assert_eq!(size("256 MiB"), Ok(256 << 20));
        assert_eq!(size("1GiB"), Ok(1 << 30));
        for bad in ["", "0", "0GiB", "1.5GiB", "-1", "1GB", "99999999999GiB"] {
            assert!(size(bad).is_err(), "{bad:?} accepted");
        }
    }
}
