use super::*;

fn proxy(address: &str, local: bool, list: &[&str]) -> AgentProxy {
    AgentProxy::Address {
        address: address.into(),
        bypass_on_local: local,
        bypass_list: list.iter().map(|s| (*s).to_owned()).collect(),
    }
}

fn set_proxy(bytes: &[u8], p: &AgentProxy) -> Vec<u8> {
    edit(
        bytes,
        Wanted {
            proxy: Some(p),
            enforce_fips_policy: None,
        },
    )
    .unwrap()
}

fn text(bytes: &[u8]) -> String {
    decode(bytes).unwrap().1
}

#[test]
fn the_sample_reads_as_no_proxy_and_no_fips_element() {
    assert_eq!(
        read(SAMPLE).unwrap(),
        ExeConfigSettings {
            proxy: AgentProxy::None,
            enforce_fips_policy: None,
        }
    );
}

#[test]
fn nothing_wanted_is_the_file_byte_for_byte() {
    assert_eq!(edit(SAMPLE, Wanted::default()).unwrap(), SAMPLE);
    // Asking for what is absent to stay absent changes nothing either.
    let none = AgentProxy::None;
    assert_eq!(
        edit(
            SAMPLE,
            Wanted {
                proxy: Some(&none),
                enforce_fips_policy: None
            }
        )
        .unwrap(),
        SAMPLE
    );
}

#[test]
fn a_proxy_is_inserted_keeping_bom_declaration_comments_and_crlf() {
    let p = proxy(
        "http://proxy.corp:8080",
        true,
        &["contoso\\.com$", "10\\..*"],
    );
    let out = set_proxy(SAMPLE, &p);
    assert!(out.starts_with(&[0xEF, 0xBB, 0xBF]), "the BOM is kept");
    let t = text(&out);
    assert!(t.starts_with(r#"<?xml version="1.0" encoding="utf-8"?>"#));
    assert!(t.contains("LAB STAND-IN for AADConnectProvisioningAgent.exe.config"));
    assert!(t.contains("<!-- Trace settings;"));
    assert!(!t.replace("\r\n", "").contains('\n'), "CRLF only:\n{t}");
    assert_eq!(
        read(&out).unwrap(),
        ExeConfigSettings {
            proxy: p.clone(),
            enforce_fips_policy: None
        }
    );
    // Inserted before </configuration>, indented as the file is.
    assert!(
        t.contains(
            "  </runtime>\r\n  <system.net>\r\n    <defaultProxy enabled=\"true\" useDefaultCredentials=\"true\">\r\n      <proxy usesystemdefault=\"true\" proxyaddress=\"http://proxy.corp:8080\" bypassonlocal=\"true\" />\r\n      <bypasslist>\r\n        <add address=\"contoso\\.com$\" />"
        ),
        "{t}"
    );
    // Every byte before the insertion point is the original's.
    let cut = SAMPLE
        .windows(b"</configuration>".len())
        .position(|w| w == b"</configuration>")
        .unwrap();
    assert_eq!(&out[..cut], &SAMPLE[..cut]);
    // Idempotent.
    assert_eq!(set_proxy(&out, &p), out);
}

#[test]
fn an_existing_default_proxy_is_replaced_and_none_removes_it() {
    let hand = text(SAMPLE).replace(
        "</configuration>",
        "  <system.net>\r\n    <!-- keep me -->\r\n    <defaultProxy enabled=\"true\" useDefaultCredentials=\"true\">\r\n      <proxy usesystemdefault=\"true\" proxyaddress=\"http://old:3128\" bypassonlocal=\"false\" />\r\n    </defaultProxy>\r\n    <settings><httpWebRequest useUnsafeHeaderParsing=\"false\" /></settings>\r\n  </system.net>\r\n</configuration>",
    );
    let hand = encode(Encoding::Utf8Bom, &hand);
    assert_eq!(
        read(&hand).unwrap().proxy,
        proxy("http://old:3128", false, &[])
    );
    let p = proxy("http://new:8080", true, &[]);
    let out = set_proxy(&hand, &p);
    let t = text(&out);
    assert_eq!(t.matches("<defaultProxy").count(), 1, "{t}");
    assert!(t.contains("<!-- keep me -->"));
    assert!(t.contains("<settings><httpWebRequest useUnsafeHeaderParsing=\"false\" /></settings>"));
    assert_eq!(read(&out).unwrap().proxy, p);

    let removed = set_proxy(&out, &AgentProxy::None);
    let t = text(&removed);
    assert!(!t.contains("defaultProxy"), "{t}");
    assert!(t.contains("    <!-- keep me -->\r\n    <settings>"), "{t}");
    assert_eq!(read(&removed).unwrap().proxy, AgentProxy::None);
}

#[test]
fn fips_is_inserted_in_runtime_then_replaced() {
    let out = edit(
        SAMPLE,
        Wanted {
            proxy: None,
            enforce_fips_policy: Some(false),
        },
    )
    .unwrap();
    let t = text(&out);
    assert!(
        t.contains(
            "    </assemblyBinding>\r\n    <enforceFIPSPolicy enabled=\"false\"/>\r\n  </runtime>"
        ),
        "{t}"
    );
    assert_eq!(read(&out).unwrap().enforce_fips_policy, Some(false));
    let back = edit(
        &out,
        Wanted {
            proxy: None,
            enforce_fips_policy: Some(true),
        },
    )
    .unwrap();
    assert_eq!(read(&back).unwrap().enforce_fips_policy, Some(true));
    assert_eq!(text(&back).matches("enforceFIPSPolicy").count(), 1);
}

#[test]
fn missing_parents_are_created_and_an_empty_root_opens() {
    let bare = b"<?xml version=\"1.0\"?>\n<configuration/>\n";
    let p = proxy("http://p:1", false, &[]);
    let out = edit(
        bare,
        Wanted {
            proxy: Some(&p),
            enforce_fips_policy: Some(false),
        },
    )
    .unwrap();
    let r = read(&out).unwrap();
    assert_eq!(r.proxy, p);
    assert_eq!(r.enforce_fips_policy, Some(false));
    let t = text(&out);
    assert!(
        t.starts_with("<?xml version=\"1.0\"?>\n<configuration>\n    <system.net>"),
        "{t}"
    );
}

#[test]
fn utf16_stays_utf16() {
    let utf16 = encode(Encoding::Utf16Le, &text(SAMPLE).replace("utf-8", "utf-16"));
    let p = proxy("http://p:1", true, &[]);
    let out = set_proxy(&utf16, &p);
    assert_eq!(&out[..2], &[0xFF, 0xFE]);
    assert_eq!(read(&out).unwrap().proxy, p);
}

#[test]
fn attribute_values_are_escaped_and_read_back() {
    let p = proxy("http://p:1/?a=1&b=\"2\"", false, &["<local>"]);
    let out = set_proxy(SAMPLE, &p);
    assert!(text(&out).contains("a=1&amp;b=&quot;2&quot;"));
    assert_eq!(read(&out).unwrap().proxy, p);
}

#[test]
fn a_disabled_default_proxy_reads_without_an_address() {
    let t = text(SAMPLE).replace(
        "</configuration>",
        "<system.net><defaultProxy enabled=\"false\"><proxy proxyaddress=\"http://p:1\" /></defaultProxy></system.net></configuration>",
    );
    assert_eq!(read(t.as_bytes()).unwrap().proxy, proxy("", false, &[]));
}

#[test]
fn broken_or_foreign_files_are_refused_not_rewritten() {
    assert!(read(b"<configuration><runtime></configuration>").is_err());
    let p = proxy("http://p:1", false, &[]);
    let latin1 =
        b"<?xml version=\"1.0\" encoding=\"iso-8859-1\"?><configuration>\xe9</configuration>";
    assert!(
        edit(
            latin1,
            Wanted {
                proxy: Some(&p),
                enforce_fips_policy: None
            }
        )
        .unwrap_err()
        .contains("neither UTF-8 nor UTF-16")
    );
    assert!(
        edit(
            b"<other/>",
            Wanted {
                proxy: Some(&p),
                enforce_fips_policy: None
            }
        )
        .unwrap_err()
        .contains("could not place")
    );
}
