//! What a failed Kerberos step means, classified from the security
//! provider's text (MIT's on Unix; SSPI's on Windows) into what a person can
//! act on. Shared by every platform's GSSAPI bind.

/// Why a Kerberos step failed, as MIT's message says it, classified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Failure {
    /// The KDC refused who we claim to be: wrong or stale key, unknown or
    /// disabled principal, expired password or ticket.
    Rejected(String),
    /// Something on this host or in the domain's setup: clock skew, an SPN
    /// the KDC does not know, no KDC for the realm, nothing usable in the
    /// keytab or cache.
    Setup(String),
}

impl Failure {
    /// True for a clock skew, which the caller can measure and say.
    pub(super) fn is_skew(&self) -> bool {
        matches!(self, Failure::Setup(m) if m.contains("KRB_AP_ERR_SKEW"))
    }

    /// The same failure with `note` added to its message.
    pub(super) fn with_note(self, note: &str) -> Self {
        match self {
            Failure::Rejected(m) => Failure::Rejected(format!("{m}; {note}")),
            Failure::Setup(m) => Failure::Setup(format!("{m}; {note}")),
        }
    }
}

/// How far the DC's clock is from ours, in words (`dc_minus_ours` seconds).
pub(super) fn describe_skew(dc_minus_ours: i64) -> String {
    let direction = if dc_minus_ours >= 0 {
        "ahead of"
    } else {
        "behind"
    };
    format!(
        "the DC's clock is {} s {direction} this host's (its RootDSE currentTime)",
        dc_minus_ours.unsigned_abs()
    )
}

/// Turns MIT's text into a message that says what to fix. `spn` is the
/// service the bind asked a ticket for, when the failure is about it.
pub(super) fn classify(text: &str, principal: &str, what: &str, spn: Option<&str>) -> Failure {
    let lower = text.to_ascii_lowercase();
    let has = |needle: &str| lower.contains(needle);
    if has("clock skew") {
        return Failure::Setup(format!(
            "the clocks of this host and the KDC differ by more than the allowed skew \
             (KRB_AP_ERR_SKEW, usually 5 minutes): {text}"
        ));
    }
    if has("server not found in kerberos database") {
        let spn = spn.unwrap_or("ldap/<the DC's host name>");
        return Failure::Setup(format!(
            "the KDC knows no service principal {spn}: bind to the DC by its host name as \
             registered in the directory, not by an address or alias ({text})"
        ));
    }
    if has("cannot find kdc") || has("cannot contact any kdc") || has("cannot resolve network") {
        let realm = principal.rsplit_once('@').map_or("", |(_, r)| r);
        let config = std::env::var("KRB5_CONFIG").unwrap_or_else(|_| "/etc/krb5.conf".to_owned());
        return Failure::Setup(format!(
            "no KDC answers for realm {realm} ({config} names the KDCs): {text}"
        ));
    }
    if has("preauthentication failed")
        || has("password incorrect")
        || has("client not found")
        || has("revoked")
        || has("expired")
    {
        return Failure::Rejected(format!("the KDC refused {principal} with {what}: {text}"));
    }
    if has("no key table entry")
        || has("no credentials")
        || has("no such file")
        || has("not found in keytab")
        || has("key table file")
        || has("credentials cache")
    {
        return Failure::Setup(format!(
            "no usable credentials for {principal} in {what}: {text}"
        ));
    }
    Failure::Setup(format!("Kerberos for {principal} with {what}: {text}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_say_what_to_fix() {
        let f = classify(
            "Miscellaneous failure: Clock skew too great",
            "VM$@LAB.EXAMPLE.TEST",
            "keytab /k",
            None,
        );
        assert!(
            matches!(&f, Failure::Setup(m) if m.contains("KRB_AP_ERR_SKEW")),
            "{f:?}"
        );
        let f = classify(
            "Server not found in Kerberos database",
            "VM$@LAB.EXAMPLE.TEST",
            "keytab /k",
            Some("ldap/127.0.0.2"),
        );
        assert!(
            matches!(&f, Failure::Setup(m) if m.contains("ldap/127.0.0.2")),
            "{f:?}"
        );
        let f = classify(
            "Cannot find KDC for realm \"NOPE.TEST\"",
            "VM$@NOPE.TEST",
            "keytab /k",
            None,
        );
        assert!(
            matches!(&f, Failure::Setup(m) if m.contains("realm NOPE.TEST")),
            "{f:?}"
        );
        let f = classify(
            "Preauthentication failed",
            "provAgentgMSA$@LAB.EXAMPLE.TEST",
            "its password",
            None,
        );
        assert!(
            matches!(&f, Failure::Rejected(m) if m.contains("provAgentgMSA$")),
            "{f:?}"
        );
        let f = classify(
            "No key table entry found for OTHER$@LAB.EXAMPLE.TEST",
            "OTHER$@LAB.EXAMPLE.TEST",
            "keytab /var/tmp/provd-lab/vm.keytab",
            None,
        );
        assert!(
            matches!(&f, Failure::Setup(m) if m.contains("keytab /var/tmp/provd-lab/vm.keytab")),
            "{f:?}"
        );
    }

    #[test]
    fn a_skew_is_said_with_its_size_and_direction() {
        let f = classify("Clock skew too great", "VM$@LAB", "keytab /k", None);
        assert!(f.is_skew());
        let f = f.with_note(&describe_skew(-421));
        assert!(
            matches!(&f, Failure::Setup(m) if m.contains("421 s behind this host's")),
            "{f:?}"
        );
        assert!(describe_skew(30).contains("30 s ahead of"));
        assert!(!classify("Preauthentication failed", "p", "w", None).is_skew());
    }
}
