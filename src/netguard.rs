//! The network guard: which destination addresses mlhook may connect to.
//!
//! Users type destination URLs; an unchecked service would let them reach
//! its own loopback, the private network or a cloud metadata endpoint (SSRF).
//! Every address is checked after DNS resolution, on each attempt, test and
//! validation — the address actually connected to, so a DNS answer that
//! changes between check and use (rebinding) cannot slip through. Operators
//! open what they need with `--allow-network CIDR`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use ipnet::IpNet;

/// A refused destination and the rule that refused it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("destination {addr} is blocked: {rule} (open it with --allow-network)")]
pub struct Blocked {
    pub addr: IpAddr,
    pub rule: &'static str,
}

/// Which addresses may be reached, and whether plain HTTP may be used.
#[derive(Debug, Clone, Default)]
pub struct NetworkPolicy {
    pub allow: Vec<IpNet>,
    pub https_only: bool,
}

impl NetworkPolicy {
    /// Allowed when an operator opened its range, or when no rule blocks it.
    pub fn check(&self, addr: IpAddr) -> Result<(), Blocked> {
        if self.allow.iter().any(|net| net.contains(&addr)) {
            return Ok(());
        }
        match blocked_rule(addr) {
            Some(rule) => Err(Blocked { addr, rule }),
            None => Ok(()),
        }
    }
}

impl NetworkPolicy {
    /// What can be judged from the URL alone: the scheme, and a host that is
    /// an IP literal (no DNS lookup happens for it). URL parsing has already
    /// turned decimal, octal and hex IPv4 forms into the address they mean.
    pub fn check_url(&self, url: &str) -> Result<(), String> {
        self.check_parsed_url(&parse_url(url)?)
    }

    /// [`check_url`](Self::check_url) for a URL already parsed.
    pub fn check_parsed_url(&self, parsed: &url::Url) -> Result<(), String> {
        if self.https_only && parsed.scheme() != "https" {
            return Err("plain HTTP is refused (--https-only)".to_string());
        }
        let ip = match parsed.host() {
            Some(url::Host::Ipv4(v4)) => IpAddr::V4(v4),
            Some(url::Host::Ipv6(v6)) => IpAddr::V6(v6),
            _ => return Ok(()),
        };
        self.check(ip).map_err(|blocked| blocked.to_string())
    }
}

/// A destination URL, or why it is not one (the guard's wording).
pub fn parse_url(url: &str) -> Result<url::Url, String> {
    url::Url::parse(url).map_err(|e| format!("not a valid URL: {e}"))
}

/// The rule that blocks `addr` by default, if any.
pub fn blocked_rule(addr: IpAddr) -> Option<&'static str> {
    match addr {
        IpAddr::V4(v4) => v4_rule(v4),
        IpAddr::V6(v6) => v6_rule(v6),
    }
}

const V4_RULES: [(&str, &str); 15] = [
    ("0.0.0.0/8", "unspecified (\"this network\")"),
    ("10.0.0.0/8", "private network (RFC 1918)"),
    ("100.64.0.0/10", "carrier-grade NAT (RFC 6598)"),
    ("127.0.0.0/8", "loopback"),
    (
        "169.254.0.0/16",
        "link-local (incl. cloud metadata 169.254.169.254)",
    ),
    ("172.16.0.0/12", "private network (RFC 1918)"),
    ("192.0.0.0/24", "IETF protocol assignments (reserved)"),
    ("192.0.2.0/24", "documentation (TEST-NET-1)"),
    ("192.168.0.0/16", "private network (RFC 1918)"),
    ("198.18.0.0/15", "benchmarking (RFC 2544)"),
    ("198.51.100.0/24", "documentation (TEST-NET-2)"),
    ("203.0.113.0/24", "documentation (TEST-NET-3)"),
    ("224.0.0.0/4", "multicast"),
    // Broadcast sits inside 240/4: checked first so its rule is named.
    ("255.255.255.255/32", "broadcast"),
    ("240.0.0.0/4", "reserved"),
];

fn v4_rule(addr: Ipv4Addr) -> Option<&'static str> {
    V4_RULES
        .iter()
        .find(|(net, _)| {
            net.parse::<ipnet::Ipv4Net>()
                .expect("static CIDR")
                .contains(&addr)
        })
        .map(|(_, rule)| *rule)
}

const V6_RULES: [(&str, &str); 9] = [
    ("::/128", "unspecified"),
    ("::1/128", "loopback"),
    ("fc00::/7", "unique local address (private)"),
    ("fe80::/10", "link-local"),
    ("fec0::/10", "site-local (deprecated, private)"),
    ("ff00::/8", "multicast"),
    ("2001:db8::/32", "documentation"),
    ("2001:2::/48", "benchmarking"),
    ("100::/64", "discard-only (reserved)"),
];

fn v6_rule(addr: Ipv6Addr) -> Option<&'static str> {
    // IPv4 inside IPv6 is judged as the IPv4 address it carries.
    if let Some(v4) = embedded_v4(addr) {
        return v4_rule(v4);
    }
    if in_net(addr, "2001::/32") {
        return Some("Teredo tunnel (reserved)");
    }
    V6_RULES
        .iter()
        .find(|(net, _)| in_net(addr, net))
        .map(|(_, rule)| *rule)
}

fn in_net(addr: Ipv6Addr, net: &str) -> bool {
    net.parse::<ipnet::Ipv6Net>()
        .expect("static CIDR")
        .contains(&addr)
}

/// The IPv4 address in IPv4-mapped (::ffff:a.b.c.d), IPv4-compatible
/// (::a.b.c.d), NAT64 (64:ff9b::/96) and 6to4 (2002::/16) forms.
fn embedded_v4(addr: Ipv6Addr) -> Option<Ipv4Addr> {
    let o = addr.octets();
    let tail = Ipv4Addr::new(o[12], o[13], o[14], o[15]);
    if let Some(v4) = addr.to_ipv4_mapped() {
        return Some(v4);
    }
    if o[..12].iter().all(|b| *b == 0) && !addr.is_unspecified() && addr != Ipv6Addr::LOCALHOST {
        return Some(tail);
    }
    if in_net(addr, "64:ff9b::/96") {
        return Some(tail);
    }
    if in_net(addr, "2002::/16") {
        return Some(Ipv4Addr::new(o[2], o[3], o[4], o[5]));
    }
    None
}

/// Looks a host name up: the system resolver in the service, a scripted one
/// in tests of DNS rebinding.
pub type Lookup = Arc<
    dyn Fn(String) -> futures::future::BoxFuture<'static, std::io::Result<Vec<SocketAddr>>>
        + Send
        + Sync,
>;

/// A DNS resolver for the HTTP client that hands it only allowed addresses:
/// the check happens on the very addresses the connection will use, at every
/// connection, so a name that changes its answer (DNS rebinding) is caught.
#[derive(Clone)]
pub struct GuardedResolver {
    policy: Arc<NetworkPolicy>,
    lookup: Lookup,
}

impl std::fmt::Debug for GuardedResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GuardedResolver")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl GuardedResolver {
    pub fn new(policy: Arc<NetworkPolicy>) -> GuardedResolver {
        let system: Lookup = Arc::new(|host: String| {
            Box::pin(
                async move { Ok(tokio::net::lookup_host((host.as_str(), 0)).await?.collect()) },
            )
        });
        GuardedResolver::with_lookup(policy, system)
    }

    pub fn with_lookup(policy: Arc<NetworkPolicy>, lookup: Lookup) -> GuardedResolver {
        GuardedResolver { policy, lookup }
    }
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.policy.clone();
        let lookup = self.lookup.clone();
        Box::pin(async move {
            let host = name.as_str().to_string();
            let found = lookup(host.clone()).await?;
            let mut first_refusal = None;
            let allowed: Vec<SocketAddr> = found
                .into_iter()
                .filter(|a| match policy.check(a.ip()) {
                    Ok(()) => true,
                    Err(blocked) => {
                        first_refusal.get_or_insert(blocked);
                        false
                    }
                })
                .collect();
            if allowed.is_empty() {
                let error: Box<dyn std::error::Error + Send + Sync> = match first_refusal {
                    Some(blocked) => Box::new(blocked),
                    None => format!("{host} has no address").into(),
                };
                return Err(error);
            }
            let addrs: reqwest::dns::Addrs = Box::new(allowed.into_iter());
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(text: &str) -> Option<&'static str> {
        blocked_rule(text.parse().unwrap())
    }

    #[test]
    fn the_classic_targets_are_blocked_by_name() {
        assert_eq!(rule("127.0.0.1"), Some("loopback"));
        assert_eq!(rule("10.1.2.3"), Some("private network (RFC 1918)"));
        assert_eq!(rule("172.31.255.255"), Some("private network (RFC 1918)"));
        assert_eq!(rule("192.168.1.1"), Some("private network (RFC 1918)"));
        assert!(rule("169.254.169.254").unwrap().contains("metadata"));
        assert_eq!(rule("100.64.0.1"), Some("carrier-grade NAT (RFC 6598)"));
        assert_eq!(rule("0.0.0.0"), Some("unspecified (\"this network\")"));
        assert_eq!(rule("224.0.0.1"), Some("multicast"));
        assert_eq!(rule("255.255.255.255"), Some("broadcast"));
        assert_eq!(rule("198.51.100.7"), Some("documentation (TEST-NET-2)"));
        assert_eq!(rule("198.18.0.1"), Some("benchmarking (RFC 2544)"));
        assert_eq!(rule("240.0.0.1"), Some("reserved"));
        assert_eq!(rule("::1"), Some("loopback"));
        assert_eq!(rule("::"), Some("unspecified"));
        assert_eq!(rule("fd00::1"), Some("unique local address (private)"));
        assert_eq!(rule("fe80::1"), Some("link-local"));
        assert_eq!(rule("ff02::1"), Some("multicast"));
        assert_eq!(rule("2001:db8::1"), Some("documentation"));
    }

    #[test]
    fn ipv4_inside_ipv6_is_judged_as_ipv4() {
        assert_eq!(rule("::ffff:127.0.0.1"), Some("loopback"));
        assert_eq!(
            rule("::ffff:169.254.169.254").map(|r| r.contains("metadata")),
            Some(true)
        );
        assert_eq!(rule("::10.0.0.1"), Some("private network (RFC 1918)"));
        assert_eq!(
            rule("64:ff9b::a9fe:a9fe").map(|r| r.contains("metadata")),
            Some(true)
        );
        assert_eq!(rule("2002:7f00:1::"), Some("loopback"));
        assert_eq!(rule("::ffff:8.8.8.8"), None);
    }

    #[test]
    fn public_addresses_pass() {
        for ip in [
            "8.8.8.8",
            "1.1.1.1",
            "151.101.1.69",
            "2606:4700::1111",
            "2a00:1450::1",
        ] {
            assert_eq!(rule(ip), None, "{ip}");
        }
    }

    #[test]
    fn url_tricks_resolve_to_the_address_they_mean() {
        let policy = NetworkPolicy::default();
        for url in [
            "http://127.0.0.1/",
            "http://2130706433/",
            "http://0x7f.0.0.1/",
            "http://0177.0.0.1/",
            "http://127.1/",
            "http://[::1]/",
            "http://[::ffff:169.254.169.254]/",
            "http://169.254.169.254/latest/meta-data/",
        ] {
            assert!(policy.check_url(url).is_err(), "{url} passed");
        }
        assert!(policy.check_url("https://hooks.example.com/x").is_ok());
        let strict = NetworkPolicy {
            https_only: true,
            ..NetworkPolicy::default()
        };
        assert!(
            strict
                .check_url("http://hooks.example.com/x")
                .unwrap_err()
                .contains("https-only")
        );
    }

    /// Listeners on 127.0.0.2 and 127.0.0.1 sharing one port number.
    async fn same_port_on_two_addresses() -> (tokio::net::TcpListener, tokio::net::TcpListener, u16)
    {
        for _ in 0..50 {
            let first = tokio::net::TcpListener::bind("127.0.0.2:0").await.unwrap();
            let port = first.local_addr().unwrap().port();
            if let Ok(second) = tokio::net::TcpListener::bind(("127.0.0.1", port)).await {
                return (first, second, port);
            }
        }
        panic!("no port was free on both 127.0.0.2 and 127.0.0.1");
    }

    /// DNS rebinding: a name answers an allowed address first and a blocked
    /// one on the second lookup. Two real listeners on loopback stand for the
    /// two hosts; only the allowed one may ever see a request.
    #[tokio::test]
    async fn a_name_that_rebinds_to_a_blocked_address_is_refused_on_the_next_connection() {
        let (allowed, forbidden, port) = same_port_on_two_addresses().await;
        let hits = Arc::new([
            std::sync::atomic::AtomicUsize::new(0),
            std::sync::atomic::AtomicUsize::new(0),
        ]);
        for (i, listener) in [allowed, forbidden].into_iter().enumerate() {
            let hits = hits.clone();
            let app = axum::Router::new().fallback(move || {
                hits[i].fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                async { "ok" }
            });
            tokio::spawn(async move { axum::serve(listener, app).await });
        }
        let lookups = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let script: Lookup = {
            let lookups = lookups.clone();
            Arc::new(move |_host| {
                let n = lookups.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let ip = if n == 0 { "127.0.0.2" } else { "127.0.0.1" };
                Box::pin(async move { Ok(vec![SocketAddr::new(ip.parse().unwrap(), port)]) })
            })
        };
        let policy = Arc::new(NetworkPolicy {
            allow: vec!["127.0.0.2/32".parse().unwrap()],
            https_only: false,
        });
        let client = reqwest::Client::builder()
            .dns_resolver(Arc::new(GuardedResolver::with_lookup(policy, script)))
            .pool_max_idle_per_host(0)
            .build()
            .unwrap();
        let url = format!("http://rebinding.test:{port}/hook");
        let first = client.post(&url).send().await.unwrap();
        assert_eq!(first.status(), 200);
        let second = client.post(&url).send().await.unwrap_err();
        let chain = format!("{:?}", second);
        assert!(chain.contains("loopback"), "{chain}");
        assert_eq!(lookups.load(std::sync::atomic::Ordering::SeqCst), 2);
        assert_eq!(hits[0].load(std::sync::atomic::Ordering::SeqCst), 1);
        assert_eq!(hits[1].load(std::sync::atomic::Ordering::SeqCst), 0);
    }

    #[test]
    fn an_allowed_range_opens_only_itself() {
        let policy = NetworkPolicy {
            allow: vec!["127.0.0.0/8".parse().unwrap()],
            https_only: false,
        };
        assert!(policy.check("127.0.0.1".parse().unwrap()).is_ok());
        let blocked = policy.check("10.0.0.1".parse().unwrap()).unwrap_err();
        assert_eq!(blocked.rule, "private network (RFC 1918)");
        assert!(blocked.to_string().contains("10.0.0.1"));
    }
}
