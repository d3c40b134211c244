//! What an image URL may point at: http(s) only, and (unless private networks are allowed) only
//! public unicast addresses, so a user cannot make the server fetch from its own network, its
//! loopback services or a cloud metadata endpoint.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use url::{Host, Url};

/// Redirects followed before giving up.
pub const MAX_REDIRECTS: usize = 5;

/// Why a URL or address is refused. The Display is a sentence for the user; it never contains the
/// URL (which may carry credentials), only the scheme or the address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("only http and https image URLs are accepted, not {0}:")]
    Scheme(String),
    #[error("the image URL has no host")]
    NoHost,
    #[error("the image URL points to {addr}, a {kind} address, which is not allowed")]
    Address { addr: IpAddr, kind: &'static str },
    #[error("the image URL's host resolves only to non-public addresses, which are not allowed")]
    NoPublicAddress,
    #[error("the image URL redirected more than {MAX_REDIRECTS} times")]
    TooManyRedirects,
}

/// Checks what can be checked without DNS: the scheme, and the host when it is an IP literal
/// (which the resolver never sees). `url` has already normalised decimal, octal and hex IPv4
/// spellings (`2130706433`, `0177.0.0.1`, `0x7f.1`) to an address.
pub fn check_url(url: &Url, allow_private: bool) -> Result<(), Refused> {
    match url.scheme() {
        "http" | "https" => {}
        other => return Err(Refused::Scheme(other.to_owned())),
    }
    let host = url.host().ok_or(Refused::NoHost)?;
    if allow_private {
        return Ok(());
    }
    let ip = match host {
        Host::Ipv4(v4) => IpAddr::V4(v4),
        Host::Ipv6(v6) => IpAddr::V6(v6),
        Host::Domain(_) => return Ok(()),
    };
    check_ip(ip, false)
}

/// The check of one redirect hop: `hops_so_far` is how many URLs were already requested.
pub fn check_redirect(url: &Url, hops_so_far: usize, allow_private: bool) -> Result<(), Refused> {
    if hops_so_far > MAX_REDIRECTS {
        return Err(Refused::TooManyRedirects);
    }
    check_url(url, allow_private)
}

pub fn check_ip(ip: IpAddr, allow_private: bool) -> Result<(), Refused> {
    match (allow_private, classify(ip)) {
        (false, Some(kind)) => Err(Refused::Address { addr: ip, kind }),
        _ => Ok(()),
    }
}

/// `None` for a public unicast address, else what kind of address it is.
pub fn classify(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn in_v4(ip: Ipv4Addr, net: [u8; 4], len: u32) -> bool {
    let mask = u32::MAX.checked_shl(32 - len).unwrap_or(0);
    u32::from(ip) & mask == u32::from(Ipv4Addr::from(net)) & mask
}

fn classify_v4(ip: Ipv4Addr) -> Option<&'static str> {
    const RANGES: &[([u8; 4], u32, &str)] = &[
        ([0, 0, 0, 0], 8, "unspecified"),
        ([10, 0, 0, 0], 8, "private"),
        ([100, 64, 0, 0], 10, "shared (CGNAT)"),
        ([127, 0, 0, 0], 8, "loopback"),
        ([169, 254, 0, 0], 16, "link-local"),
        ([172, 16, 0, 0], 12, "private"),
        ([192, 0, 0, 0], 24, "reserved"),
        ([192, 0, 2, 0], 24, "documentation"),
        ([192, 88, 99, 0], 24, "6to4 relay"),
        ([192, 168, 0, 0], 16, "private"),
        ([198, 18, 0, 0], 15, "benchmarking"),
        ([198, 51, 100, 0], 24, "documentation"),
        ([203, 0, 113, 0], 24, "documentation"),
        ([224, 0, 0, 0], 4, "multicast"),
        // 240/4 is reserved and holds the broadcast address 255.255.255.255.
        ([240, 0, 0, 0], 4, "reserved"),
    ];
    RANGES
        .iter()
        .find(|(net, len, _)| in_v4(ip, *net, *len))
        .map(|(_, _, kind)| *kind)
}

fn classify_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let seg = ip.segments();
    let bits = u128::from(ip);
    let in_v6 = |net: u128, len: u32| (bits ^ net).checked_shr(128 - len).unwrap_or(0) == 0;
    let low_v4 = Ipv4Addr::from(bits as u32);

    // Forms that embed an IPv4 address reach that address, so they are judged by it.
    if in_v6(0xffff << 32, 96) {
        return classify_v4(low_v4).map(|_| "IPv4-mapped non-public");
    }
    if ip.is_unspecified() {
        return Some("unspecified");
    }
    if ip.is_loopback() {
        return Some("loopback");
    }
    if in_v6(0, 96) {
        return classify_v4(low_v4).map(|_| "IPv4-compatible non-public");
    }
    if in_v6(0x0064_ff9b << 96, 96) {
        return classify_v4(low_v4).map(|_| "NAT64 non-public");
    }
    if seg[0] == 0x2002 {
        let v4 = Ipv4Addr::from(((seg[1] as u32) << 16) | seg[2] as u32);
        return classify_v4(v4).map(|_| "6to4 non-public");
    }
    // Everything public is in 2000::/3; outside it are loopback, unique-local (fc00::/7),
    // link-local (fe80::/10), site-local, multicast (ff00::/8), discard (100::/64), local NAT64…
    if seg[0] & 0xe000 != 0x2000 {
        return Some(match seg[0] {
            0xfc00..=0xfdff => "unique-local",
            0xfe80..=0xfebf => "link-local",
            0xff00..=0xffff => "multicast",
            _ => "reserved",
        });
    }
    if in_v6(0x2001_0db8 << 96, 32) || in_v6(0x3fff << 112, 20) {
        return Some("documentation");
    }
    // 2001::/23 is IETF special-purpose space: Teredo tunnels (whose embedded address is
    // obfuscated), benchmarking, ORCHID. Nothing an image is served from.
    if in_v6(0x2001 << 112, 23) {
        return Some("special-purpose");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(url: &str) -> bool {
        check_url(&Url::parse(url).unwrap(), false).is_err()
    }

    #[test]
    fn non_public_addresses() {
        for ip in [
            "0.0.0.0",
            "127.0.0.1",
            "127.255.0.9",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "100.64.0.1",
            "100.127.255.254",
            "169.254.169.254",
            "192.0.0.8",
            "192.0.2.1",
            "198.18.0.1",
            "198.19.255.1",
            "198.51.100.7",
            "203.0.113.9",
            "224.0.0.1",
            "239.255.255.250",
            "255.255.255.255",
            "240.0.0.1",
            "::",
            "::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::127.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "2002:7f00:1::",
            "2002:c0a8:101::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "fec0::1",
            "ff02::1",
            "100::1",
            "2001:db8::1",
            "2001::1",
            "2001:2::1",
            "3fff::1",
        ] {
            let addr: IpAddr = ip.parse().unwrap();
            assert!(classify(addr).is_some(), "{ip} was allowed");
            assert!(check_ip(addr, true).is_ok(), "{ip} refused though allowed");
        }
    }

    #[test]
    fn public_addresses() {
        for ip in [
            "1.1.1.1",
            "8.8.8.8",
            "172.15.255.255",
            "172.32.0.1",
            "100.63.255.255",
            "100.128.0.1",
            "169.253.1.1",
            "198.17.1.1",
            "223.255.255.254",
            "2606:4700::1111",
            "2a00:1450::1",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
        ] {
            let addr: IpAddr = ip.parse().unwrap();
            assert_eq!(classify(addr), None, "{ip} was refused");
        }
    }

    #[test]
    fn literal_hosts_in_every_spelling() {
        for url in [
            "http://127.0.0.1:8080/x",
            "http://2130706433/",
            "http://0177.0.0.1/",
            "http://0x7f.0.0.1/",
            "http://0x7f000001/",
            "http://127.1/",
            "http://[::ffff:127.0.0.1]/",
            "http://[::1]/",
            "http://169.254.169.254/latest/meta-data/",
            "http://[fd00::1]/",
            "https://10.0.0.1/",
        ] {
            assert!(refused(url), "{url} was allowed");
        }
        assert!(!refused("http://example.com/x.img"));
        assert!(!refused("https://93.184.216.34/x.img"));
    }

    #[test]
    fn schemes() {
        for url in [
            "file:///etc/passwd",
            "ftp://example.com/x",
            "gopher://example.com/",
        ] {
            let err = check_url(&Url::parse(url).unwrap(), true).unwrap_err();
            assert!(matches!(err, Refused::Scheme(_)), "{url}: {err}");
        }
        let msg = check_url(&Url::parse("file:///etc/passwd").unwrap(), true)
            .unwrap_err()
            .to_string();
        assert_eq!(
            msg,
            "only http and https image URLs are accepted, not file:"
        );
    }

    #[test]
    fn redirect_hops() {
        let public = Url::parse("https://example.com/next").unwrap();
        for hops in 1..=MAX_REDIRECTS {
            assert_eq!(check_redirect(&public, hops, false), Ok(()));
        }
        assert_eq!(
            check_redirect(&public, MAX_REDIRECTS + 1, false),
            Err(Refused::TooManyRedirects)
        );
        let private = Url::parse("http://127.0.0.1:9000/x").unwrap();
        assert!(matches!(
            check_redirect(&private, 1, false),
            Err(Refused::Address { .. })
        ));
        assert_eq!(check_redirect(&private, 1, true), Ok(()));
        let ftp = Url::parse("ftp://example.com/x").unwrap();
        assert!(matches!(
            check_redirect(&ftp, 1, true),
            Err(Refused::Scheme(_))
        ));
    }
}
