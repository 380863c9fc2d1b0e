//! Exit policies: text syntax, round trips, `allows`, `may_allow_port`, `is_exit`.

use std::net::IpAddr;

use braid_directory::policy::{ALL_PORTS, MAX_EXIT_RULES};
use braid_directory::{AddrPattern, Error, ExitPolicy, ExitRule};

fn policy(lines: &[&str]) -> ExitPolicy {
    ExitPolicy::parse_rules(lines).unwrap()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn reason(line: &str) -> String {
    match ExitPolicy::parse_rules(&[line]) {
        Err(Error::BadPolicy {
            line: shown,
            reason,
        }) => {
            assert_eq!(shown, line.trim());
            reason
        }
        other => panic!("{line:?}: expected BadPolicy, got {other:?}"),
    }
}

#[test]
fn parses_each_form() {
    let p = policy(&[
        "accept *:*",
        "reject private:*",
        "accept 127.0.0.0/8:80-443",
        "accept [::1]:8080",
        "reject *:25",
        "  accept   1.2.3.4:1  ",
        "accept [fc00::]/7:65535",
    ]);
    let net = |s: &str, len| AddrPattern::Net(ip(s), len);
    let rule = |accept, addr, ports| ExitRule {
        accept,
        addr,
        ports,
    };
    assert_eq!(
        p.rules,
        vec![
            rule(true, AddrPattern::Any, (1, 65535)),
            rule(false, AddrPattern::Private, ALL_PORTS),
            rule(true, net("127.0.0.0", 8), (80, 443)),
            rule(true, net("::1", 128), (8080, 8080)),
            rule(false, AddrPattern::Any, (25, 25)),
            rule(true, net("1.2.3.4", 32), (1, 1)),
            rule(true, net("fc00::", 7), (65535, 65535)),
        ]
    );
}

#[test]
fn blank_lines_and_comments_are_skipped() {
    let p = policy(&[
        "",
        "   ",
        "# no smtp",
        "reject *:25",
        "  # indented comment",
    ]);
    assert_eq!(p, policy(&["reject *:25"]));
    assert_eq!(
        ExitPolicy::parse_rules(&[] as &[&str]).unwrap(),
        ExitPolicy::reject_all()
    );
}

#[test]
fn to_lines_is_canonical_and_round_trips() {
    let text = [
        "reject private:*",
        "accept 10.0.0.0/8:80-443",
        "accept 1.2.3.4:22",
        "accept [2001:db8::1]:8080",
        "accept [2001:db8::]/32:1-1024",
        "accept 0.0.0.0/0:53",
        "accept [::]/0:53",
        "reject *:*",
    ];
    let p = policy(&text);
    assert_eq!(p.to_lines(), text);
    assert_eq!(ExitPolicy::parse_rules(&p.to_lines()).unwrap(), p);
    // Non-canonical spellings come back canonical.
    let p = policy(&[
        "accept 1.2.3.4/32:80-80",
        "accept [2001:0db8:0::1]/128:1-65535",
        "reject  *:443-443",
    ]);
    assert_eq!(
        p.to_lines(),
        [
            "accept 1.2.3.4:80",
            "accept [2001:db8::1]:*",
            "reject *:443"
        ]
    );
    assert_eq!(ExitPolicy::accept_all().to_lines(), ["accept *:*"]);
    assert!(ExitPolicy::reject_all().to_lines().is_empty());
    assert_eq!(ExitPolicy::default(), ExitPolicy::reject_all());
}

#[test]
fn parse_errors_say_what_is_wrong() {
    let cases = [
        ("accept", "expected `accept ADDR:PORTS`"),
        ("accept *:* extra", "expected `accept ADDR:PORTS`"),
        ("allow *:*", "unknown action \"allow\""),
        ("Accept *:*", "unknown action"),
        ("accept *", "missing `:PORTS`"),
        ("accept :80", "missing address"),
        ("accept 1.2.3:80", "is not `*`, `private`, an IPv4 address"),
        ("accept localhost:80", "is not `*`, `private`"),
        ("accept 1.2.3.4/:80", "prefix length \"\""),
        (
            "accept 1.2.3.4/33:80",
            "prefix length \"33\" is not a number from 0 to 32",
        ),
        ("accept [::1]/129:80", "from 0 to 128"),
        ("accept 1.2.3.0/+8:80", "prefix length \"+8\""),
        ("accept 10.0.0.1/8:80", "did you mean 10.0.0.0/8?"),
        (
            "accept [2001:db8::1]/32:80",
            "did you mean [2001:db8::]/32?",
        ),
        ("accept ::1:80", "must be in brackets"),
        ("accept [::1:80", "without closing `]`"),
        ("accept [::1]x:80", "unexpected \"x\""),
        ("accept [1.2.3.4]:80", "is not an IPv6 address"),
        ("accept [::ffff:1.2.3.4]:80", "IPv4-mapped"),
        ("accept *:0", "port 0"),
        ("accept *:0-80", "port 0"),
        ("accept *:443-80", "443-80 is empty"),
        ("accept *:65536", "port \"65536\" is not a number"),
        ("accept *:+80", "port \"+80\""),
        ("accept *:80-", "port \"\""),
        ("accept *:-80", "port \"\""),
        ("accept *:1-2-3", "port \"2-3\""),
        ("accept *:http", "port \"http\""),
    ];
    for (line, want) in cases {
        let got = reason(line);
        assert!(
            got.contains(want),
            "{line:?}: reason {got:?} lacks {want:?}"
        );
    }
}

#[test]
fn rule_count_limit() {
    let lines = vec!["reject *:25"; MAX_EXIT_RULES];
    assert_eq!(
        ExitPolicy::parse_rules(&lines).unwrap().rules.len(),
        MAX_EXIT_RULES
    );
    let mut lines = lines;
    lines.push("accept *:*");
    assert_eq!(
        ExitPolicy::parse_rules(&lines),
        Err(Error::BadPolicy {
            line: "accept *:*".into(),
            reason: "more than 64 rules".into()
        })
    );
}

#[test]
fn long_lines_are_cut_in_errors() {
    let line = format!("accept {}:80", "9".repeat(500));
    match ExitPolicy::parse_rules(&[&line]) {
        Err(Error::BadPolicy { line: shown, .. }) => {
            assert_eq!(shown, format!("{}...", &line[..80]));
        }
        other => panic!("expected BadPolicy, got {other:?}"),
    }
}

#[test]
fn allows_first_match_and_default_reject() {
    let p = policy(&[
        "reject 1.2.3.4:*",
        "accept 1.2.3.0/24:80",
        "reject *:80",
        "accept *:443",
    ]);
    assert!(!p.allows(ip("1.2.3.4"), 80)); // first rule wins over the second
    assert!(p.allows(ip("1.2.3.5"), 80));
    assert!(!p.allows(ip("1.2.4.5"), 80)); // third rule
    assert!(p.allows(ip("8.8.8.8"), 443));
    assert!(!p.allows(ip("1.2.3.4"), 443));
    assert!(!p.allows(ip("8.8.8.8"), 22)); // no rule matches: reject
    assert!(!ExitPolicy::reject_all().allows(ip("8.8.8.8"), 80));
    assert!(ExitPolicy::accept_all().allows(ip("8.8.8.8"), 1));
    assert!(ExitPolicy::accept_all().allows(ip("::1"), 65535));
    assert!(!ExitPolicy::accept_all().allows(ip("8.8.8.8"), 0)); // port 0 is never a target
}

#[test]
fn allows_port_ranges_are_inclusive() {
    let p = policy(&["accept *:80-443"]);
    assert!(!p.allows(ip("8.8.8.8"), 79));
    assert!(p.allows(ip("8.8.8.8"), 80));
    assert!(p.allows(ip("8.8.8.8"), 443));
    assert!(!p.allows(ip("8.8.8.8"), 444));
}

#[test]
fn allows_v4_and_v6_networks() {
    let p = policy(&[
        "accept 10.1.0.0/16:*",
        "accept [2001:db8::]/32:*",
        "accept 0.0.0.0/0:53",
    ]);
    assert!(p.allows(ip("10.1.255.255"), 1));
    assert!(!p.allows(ip("10.2.0.0"), 1));
    assert!(p.allows(ip("2001:db8:ffff::1"), 1));
    assert!(!p.allows(ip("2001:db9::1"), 1));
    assert!(p.allows(ip("9.9.9.9"), 53));
    assert!(!p.allows(ip("2001:db9::1"), 53)); // 0.0.0.0/0 is IPv4 only
    // IPv4-mapped IPv6 is judged as IPv4.
    assert!(p.allows(ip("::ffff:10.1.2.3"), 1));
    assert!(!p.allows(ip("::ffff:10.2.2.3"), 1));
}

#[test]
fn private_covers_exactly_the_documented_ranges() {
    let p = policy(&["reject private:*", "accept *:*"]);
    let private = [
        "127.0.0.1",
        "127.255.255.255",
        "10.0.0.0",
        "10.255.255.255",
        "172.16.0.0",
        "172.31.255.255",
        "192.168.1.1",
        "169.254.0.1",
        "0.0.0.0",
        "0.1.2.3",
        "100.64.0.0",
        "100.127.255.255",
        "::1",
        "fc00::",
        "fd12:3456::1",
        "fe80::1",
        "febf:ffff::1",
        "::",
        "::ffff:127.0.0.1",
        "::ffff:192.168.0.1",
    ];
    let public = [
        "8.8.8.8",
        "172.15.255.255",
        "172.32.0.0",
        "192.169.0.0",
        "169.255.0.0",
        "1.0.0.0",
        "100.63.255.255",
        "100.128.0.0",
        "11.0.0.0",
        "126.255.255.255",
        "128.0.0.0",
        "::2",
        "fbff:ffff::1",
        "fec0::1",
        "2001:db8::1",
        "::ffff:8.8.8.8",
    ];
    for a in private {
        assert!(!p.allows(ip(a), 80), "{a} should be private");
        assert!(AddrPattern::Private.matches(ip(a)), "{a}");
    }
    for a in public {
        assert!(p.allows(ip(a), 80), "{a} should be public");
    }
}

#[test]
fn may_allow_port_for_unresolved_targets() {
    assert!(!ExitPolicy::reject_all().may_allow_port(80));
    assert!(ExitPolicy::accept_all().may_allow_port(80));
    let no_smtp = policy(&["reject *:25", "accept *:*"]);
    assert!(!no_smtp.may_allow_port(25));
    assert!(no_smtp.may_allow_port(24));
    assert!(no_smtp.may_allow_port(26));
    // A hostname can resolve to anything, so a private-only accept still counts...
    assert!(policy(&["accept private:80", "reject *:*"]).may_allow_port(80));
    // ...unless earlier rejects cover all of it.
    assert!(!policy(&["reject private:*", "accept 10.0.0.0/8:80"]).may_allow_port(80));
    assert!(policy(&["reject private:*", "accept *:*"]).may_allow_port(80));
    assert!(policy(&["reject 10.0.0.0/8:*", "accept 10.0.0.0/7:80"]).may_allow_port(80));
    assert!(
        !policy(&[
            "reject 10.0.0.0/8:*",
            "reject 11.0.0.0/8:*",
            "accept 10.0.0.0/7:80"
        ])
        .may_allow_port(80)
    );
    // Covering needs both families.
    assert!(policy(&["reject 0.0.0.0/0:*", "accept *:*"]).may_allow_port(80));
    assert!(!policy(&["reject 0.0.0.0/0:*", "reject [::]/0:*", "accept *:*"]).may_allow_port(80));
    assert!(
        !policy(&[
            "reject 0.0.0.0/1:*",
            "reject 128.0.0.0/1:*",
            "accept 1.2.3.4:80"
        ])
        .may_allow_port(80)
    );
    // Rejects on other ports do not count.
    assert!(policy(&["reject *:443", "accept *:80"]).may_allow_port(80));
    assert!(!policy(&["reject *:443", "accept *:80"]).may_allow_port(443));
}

#[test]
fn is_exit() {
    assert!(!ExitPolicy::reject_all().is_exit());
    assert!(ExitPolicy::accept_all().is_exit());
    assert!(policy(&["accept *:65535"]).is_exit());
    assert!(policy(&["accept *:1"]).is_exit());
    assert!(policy(&["accept 10.0.0.1:80"]).is_exit());
    assert!(!policy(&["reject *:*", "accept *:*"]).is_exit());
    assert!(!policy(&["reject *:1-100", "accept *:50-60"]).is_exit());
    assert!(policy(&["reject *:1-100", "accept *:50-101"]).is_exit());
    assert!(policy(&["reject *:2-65535", "accept *:*"]).is_exit()); // only port 1 is left
    assert!(!policy(&["reject *:1-80", "reject *:81-65535", "accept *:*"]).is_exit());
    assert!(
        !policy(&[
            "reject private:*",
            "reject 0.0.0.0/0:*",
            "reject [::]/0:*",
            "accept *:*"
        ])
        .is_exit()
    );
}

#[test]
fn rule_text_round_trips_through_from_str() {
    for line in [
        "accept *:*",
        "reject private:1-2",
        "accept [fe80::]/10:9",
        "reject 192.168.0.0/16:*",
    ] {
        let rule: ExitRule = line.parse().unwrap();
        assert_eq!(rule.to_string(), line);
    }
}
