//! Where the connector may connect. Mailbox hosts come from users, so "check connection" would
//! otherwise scan the operator's network: every connect resolves the host, checks each address
//! against the policy, and connects to an address that passed — never to a name resolved again
//! later, so a DNS answer that changes between the check and the connect cannot slip through.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use ipnet::IpNet;

use crate::error::{ConnectorError, Result};

/// Which addresses may be reached. By default public addresses only: link-local and cloud
/// metadata addresses, loopback, private, shared (CGNAT), unspecified, broadcast and multicast
/// ranges are refused unless a network in `allowed` holds them; `denied` refuses more.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConnectPolicy {
    /// Networks allowed even when a default rule refuses them (a company's mail server on
    /// 10.0.0.0/8, a test server on 127.0.0.0/8).
    pub allowed: Vec<IpNet>,
    /// Networks refused whatever else says (checked first).
    pub denied: Vec<IpNet>,
}

impl ConnectPolicy {
    /// A policy from configuration strings (`10.0.0.0/8`, `::1/128`, or a bare address); an
    /// entry that is neither is an error naming it.
    pub fn parse(allowed: &[String], denied: &[String]) -> std::result::Result<Self, String> {
        let networks = |entries: &[String], key: &str| -> std::result::Result<Vec<IpNet>, String> {
            entries
                .iter()
                .map(|entry| {
                    let entry = entry.trim();
                    entry
                        .parse::<IpNet>()
                        .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
                        .map_err(|_| {
                            format!(
                                "{key}: {entry:?} is not a network (use 10.0.0.0/8 or an address)"
                            )
                        })
                })
                .collect()
        };
        Ok(Self {
            allowed: networks(allowed, "imap_allowed_networks")?,
            denied: networks(denied, "imap_denied_networks")?,
        })
    }

    /// Allows every address (for tests of the connector itself and trusted embedders).
    pub fn allow_all() -> Self {
        Self {
            allowed: vec![
                IpNet::V4(ipnet::Ipv4Net::default()),
                IpNet::V6(ipnet::Ipv6Net::default()),
            ],
            denied: Vec::new(),
        }
    }

    /// Why `address` may not be reached, or `None` when it may.
    pub fn refusal(&self, address: IpAddr) -> Option<String> {
        let address = canonical(address);
        if let Some(net) = self.denied.iter().find(|net| net.contains(&address)) {
            return Some(format!("{address} is in imap_denied_networks ({net})"));
        }
        if self.allowed.iter().any(|net| net.contains(&address)) {
            return None;
        }
        default_refusal(address).map(|kind| {
            format!("{address} is {kind}; list its network in imap_allowed_networks to allow it")
        })
    }

    /// Refuses a host whose every address the policy refuses (for saving settings: early
    /// feedback; the check that counts runs at every connect). A host that does not resolve
    /// now passes: the connect will tell.
    pub async fn check_host(&self, host: &str, port: u16) -> Result<()> {
        match self.resolve(host, port).await {
            Err(refused @ ConnectorError::Refused(_)) => Err(refused),
            _ => Ok(()),
        }
    }

    /// Resolves `host` and returns the addresses the policy allows, or an error naming the
    /// policy when it allows none.
    pub(crate) async fn resolve(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>> {
        let address = format!("{host}:{port}");
        let resolved: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
            .await
            .map_err(|source| ConnectorError::Connection {
                address: address.clone(),
                source,
            })?
            .collect();
        let mut refusals = Vec::new();
        let allowed: Vec<SocketAddr> = resolved
            .into_iter()
            .filter(|candidate| match self.refusal(candidate.ip()) {
                Some(reason) => {
                    refusals.push(reason);
                    false
                }
                None => true,
            })
            .collect();
        if allowed.is_empty() {
            return Err(ConnectorError::Refused(format!(
                "the connect policy refuses {address}: {}",
                if refusals.is_empty() {
                    "it resolves to no address".to_owned()
                } else {
                    refusals.join("; ")
                }
            )));
        }
        Ok(allowed)
    }
}

/// An IPv4 address mapped into IPv6 is judged as the IPv4 address it is.
fn canonical(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(address, IpAddr::V4),
        v4 => v4,
    }
}

/// What a default rule calls an address it refuses.
fn default_refusal(address: IpAddr) -> Option<&'static str> {
    match address {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            if v4.is_link_local() {
                Some("link-local (cloud metadata lives there)")
            } else if v4.is_loopback() {
                Some("loopback")
            } else if v4.is_private() {
                Some("a private network")
            } else if a == 100 && (64..128).contains(&b) {
                Some("shared address space (CGNAT)")
            } else if v4.is_unspecified() || a == 0 {
                Some("unspecified")
            } else if v4.is_broadcast() || v4.is_multicast() || a >= 240 {
                Some("broadcast, multicast or reserved")
            } else {
                None
            }
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            if v6 == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254) {
                Some("the cloud metadata address")
            } else if first & 0xffc0 == 0xfe80 {
                Some("link-local")
            } else if v6.is_loopback() {
                Some("loopback")
            } else if first & 0xfe00 == 0xfc00 {
                Some("a private network (unique local)")
            } else if v6.is_unspecified() {
                Some("unspecified")
            } else if v6.is_multicast() {
                Some("multicast")
            } else {
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
    }

    #[test]
    fn defaults_refuse_metadata_loopback_and_private_and_allow_public() {
        let policy = ConnectPolicy::default();
        for refused in [
            "169.254.169.254",
            "fe80::1",
            "fd00:ec2::254",
            "127.0.0.1",
            "::1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "100.64.0.1",
            "0.0.0.0",
            "::ffff:127.0.0.1",
            "fc00::1",
        ] {
            assert!(policy.refusal(ip(refused)).is_some(), "{refused}");
        }
        for allowed in ["93.184.216.34", "2606:2800:220:1::1", "8.8.8.8"] {
            assert_eq!(policy.refusal(ip(allowed)), None, "{allowed}");
        }
    }

    #[test]
    fn allowed_networks_open_and_denied_networks_close() {
        let policy = ConnectPolicy::parse(
            &["127.0.0.0/8".into(), "10.0.0.5".into()],
            &["8.8.8.0/24".into()],
        )
        .unwrap_or_default();
        assert_eq!(policy.refusal(ip("127.0.0.1")), None);
        assert_eq!(policy.refusal(ip("10.0.0.5")), None);
        assert!(policy.refusal(ip("10.0.0.6")).is_some());
        assert!(
            policy
                .refusal(ip("8.8.8.8"))
                .unwrap_or_default()
                .contains("imap_denied_networks")
        );
        assert!(ConnectPolicy::parse(&["not a network".into()], &[]).is_err());
        assert_eq!(
            ConnectPolicy::allow_all().refusal(ip("169.254.169.254")),
            None
        );
    }
}
