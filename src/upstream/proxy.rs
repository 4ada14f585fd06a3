//! Outbound proxies: which one a platform's calls go through, and SOCKS5 over the may
//! transport.
//!
//! Precedence: a key's own (stored sealed with the key), then its platform's
//! (`FREELLMAPI_PROXY_<PLATFORM>`), then the global one (`FREELLMAPI_PROXY`), then the
//! standard `ALL_PROXY`/`HTTPS_PROXY`/`HTTP_PROXY` with `NO_PROXY` when none of ours is set.
//! Each distinct proxy gets its own agent (and so its own connection pool): the configured
//! ones built once at start (choosing one is a map lookup, no lock), a key's on its first call.
//!
//! `http://` proxies are asked to `CONNECT` for HTTPS targets (ureq's connector, over our
//! transport) and get plain-HTTP requests in absolute form ([`ForwardConnector`]); `socks5://`
//! (the target resolved here) and `socks5h://` (resolved by the proxy) are spoken here, with
//! username/password authentication when the URL has credentials. A proxy that cannot be
//! reached or refuses is a transport failure of that attempt. Proxy URLs may hold passwords:
//! only redacted forms are ever logged, and errors never carry the URL.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::IpAddr;

use ureq::http::Uri;
use ureq::unversioned::transport::{
    ConnectionDetails, Connector, Either, Transport, TransportAdapter,
};
use ureq::{Proxy, ProxyProtocol};

use super::transport::{MayConnector, MayTransport};
use crate::config::redact_proxy_url as redacted;
use crate::crypto::Secret;

/// The proxies in effect, parsed once.
#[derive(Default, Clone)]
pub struct Proxies {
    pub global: Option<Proxy>,
    pub per_platform: HashMap<String, Proxy>,
}

impl Proxies {
    /// From the configuration's `(platform, url)` pairs (already checked); the standard
    /// variables apply only when none is given.
    pub fn from_config(pairs: &[(Option<String>, String)]) -> Proxies {
        let mut out = Proxies::default();
        for (platform, url) in pairs {
            let Ok(proxy) = Proxy::new(url) else {
                log::warn!("proxy {} is not usable and is ignored", redacted(url));
                continue;
            };
            match platform {
                None => {
                    log::info!("outbound proxy for every platform: {}", redacted(url));
                    out.global = Some(proxy);
                }
                Some(p) => {
                    log::info!("outbound proxy for {p}: {}", redacted(url));
                    out.per_platform.insert(p.clone(), proxy);
                }
            }
        }
        if pairs.is_empty()
            && let Some(p) = Proxy::try_from_env()
        {
            // Anything else would be passed by and the calls would go out directly.
            if !(is_socks5(&p) || p.protocol() == ProxyProtocol::Http) {
                log::warn!(
                    "the proxy in the environment ({}) is not http, socks5 or socks5h and is ignored",
                    p.protocol()
                );
                return out;
            }
            log::info!(
                "outbound proxy from the environment: {} (NO_PROXY honoured)",
                shown(&p)
            );
            out.global = Some(p);
        }
        out
    }
}

/// A proxy as operators may see it: scheme, host and port, credentials hidden.
pub fn shown(p: &Proxy) -> String {
    let scheme = match p.protocol() {
        ProxyProtocol::Socks5 => "socks5",
        ProxyProtocol::Socks5h => "socks5h",
        ProxyProtocol::Https => "https",
        // Only http, socks5 and socks5h are ever kept.
        _ => "http",
    };
    let creds = if p.username().is_some() { "***@" } else { "" };
    format!("{scheme}://{creds}{}:{}", p.host(), p.port())
}

impl Proxies {
    /// (whose calls, the proxy shown) for each proxy in effect: `None` for every platform.
    pub fn described(&self) -> Vec<(Option<String>, String)> {
        let mut out: Vec<_> = self.global.iter().map(|p| (None, shown(p))).collect();
        let mut platforms: Vec<_> = self
            .per_platform
            .iter()
            .map(|(id, p)| (Some(id.clone()), shown(p)))
            .collect();
        platforms.sort();
        out.extend(platforms);
        out
    }
}

fn is_socks5(p: &Proxy) -> bool {
    matches!(p.protocol(), ProxyProtocol::Socks5 | ProxyProtocol::Socks5h)
}

/// Speaks SOCKS5 to the proxy in the call's config, if it is one; otherwise leaves the
/// connection to the rest of the chain. Must be the first link.
#[derive(Debug, Default)]
pub struct SocksConnector;

impl Connector<()> for SocksConnector {
    type Out = MayTransport;

    fn connect(
        &self,
        details: &ConnectionDetails,
        _: Option<()>,
    ) -> Result<Option<MayTransport>, ureq::Error> {
        let Some(proxy) = details.config.proxy() else {
            return Ok(None);
        };
        if !is_socks5(proxy) || proxy.is_no_proxy(details.uri) {
            return Ok(None);
        }
        let transport = open_to(proxy, details)?;
        let mut link = TransportAdapter::new(transport, details.current_time.clone());
        link.set_timeout(details.timeout);
        handshake(&mut link, proxy, details).map_err(|e| match e {
            Refusal::Io(e) => ureq::Error::Io(e),
            Refusal::Said(why) => ureq::Error::ConnectProxyFailed(why.into()),
        })?;
        Ok(Some(link.into_inner()))
    }
}

/// A TCP connection to `proxy` itself (resolved here; the address guard applies to it).
fn open_to(proxy: &Proxy, details: &ConnectionDetails) -> Result<MayTransport, ureq::Error> {
    let proxy_uri: Uri = format!("http://{}:{}", proxy.host(), proxy.port())
        .parse()
        .map_err(|_| ureq::Error::InvalidProxyUrl)?;
    let addrs = details
        .resolver
        .resolve(&proxy_uri, details.config, details.timeout)?;
    let to_proxy = ConnectionDetails {
        uri: &proxy_uri,
        addrs,
        config: details.config,
        request_level: details.request_level,
        resolver: details.resolver,
        now: details.now,
        timeout: details.timeout,
        current_time: details.current_time.clone(),
        run_connector: details.run_connector.clone(),
        register_shutdown: details.register_shutdown.clone(),
    };
    MayConnector::open(&to_proxy)
}

/// For a plain-HTTP target behind an `http://` proxy: a connection to the proxy that sends
/// each request in absolute form with the proxy's credentials (no `CONNECT`). HTTPS targets
/// are left to the `CONNECT` link after it.
#[derive(Debug, Default)]
pub struct ForwardConnector;

impl<In: Transport> Connector<In> for ForwardConnector {
    type Out = Either<In, MayTransport>;

    fn connect(
        &self,
        details: &ConnectionDetails,
        chained: Option<In>,
    ) -> Result<Option<Self::Out>, ureq::Error> {
        if let Some(t) = chained {
            return Ok(Some(Either::A(t)));
        }
        let Some(proxy) = details.config.proxy() else {
            return Ok(None);
        };
        let uri = details.uri;
        if proxy.protocol() != ProxyProtocol::Http
            || uri.scheme_str() != Some("http")
            || proxy.is_no_proxy(uri)
        {
            return Ok(None);
        }
        let host = uri.host().ok_or(ureq::Error::BadUri("no host".into()))?;
        let origin = format!("http://{host}:{}", uri.port_u16().unwrap_or(80));
        let mut auth = Vec::new();
        if let Some(user) = proxy.username() {
            let mut creds = format!("{user}:{}", proxy.password().unwrap_or_default()).into_bytes();
            auth.extend_from_slice(b"Proxy-Authorization: Basic ");
            crate::crypto::base64_into(&mut auth, &creds);
            auth.extend_from_slice(b"\r\n");
            crate::crypto::wipe(&mut creds);
        }
        let transport = open_to(proxy, details)?;
        Ok(Some(Either::B(
            transport.forward_to(origin, Secret::new(auth)),
        )))
    }
}

enum Refusal {
    Io(io::Error),
    Said(&'static str),
}

impl From<io::Error> for Refusal {
    fn from(e: io::Error) -> Self {
        Refusal::Io(e)
    }
}

/// The SOCKS5 exchange (RFC 1928, RFC 1929 for the password).
fn handshake(
    link: &mut (impl Read + Write),
    proxy: &Proxy,
    details: &ConnectionDetails,
) -> Result<(), Refusal> {
    let user = proxy.username().unwrap_or_default();
    let pass = proxy.password().unwrap_or_default();
    let with_password = !user.is_empty() || !pass.is_empty();
    link.write_all(if with_password {
        &[5, 2, 0, 2]
    } else {
        &[5, 1, 0]
    })?;
    link.flush()?;
    let mut reply = [0u8; 2];
    link.read_exact(&mut reply)?;
    match reply {
        [5, 0] => {}
        [5, 2] if with_password => {
            if user.len() > 255 || pass.len() > 255 {
                return Err(Refusal::Said("SOCKS credentials longer than 255 bytes"));
            }
            let mut auth = Vec::with_capacity(3 + user.len() + pass.len());
            auth.extend_from_slice(&[1, user.len() as u8]);
            auth.extend_from_slice(user.as_bytes());
            auth.push(pass.len() as u8);
            auth.extend_from_slice(pass.as_bytes());
            link.write_all(&auth)?;
            crate::crypto::wipe(&mut auth);
            link.flush()?;
            let mut status = [0u8; 2];
            link.read_exact(&mut status)?;
            if status[1] != 0 {
                return Err(Refusal::Said("the SOCKS proxy refused the credentials"));
            }
        }
        [5, 0xff] | [5, _] => {
            return Err(Refusal::Said(
                "the SOCKS proxy accepts none of our authentication methods",
            ));
        }
        _ => return Err(Refusal::Said("not a SOCKS5 proxy")),
    }

    let uri = details.uri;
    let host = uri.host().ok_or(Refusal::Said("the target has no host"))?;
    let port = uri
        .port_u16()
        .unwrap_or(if uri.scheme_str() == Some("https") {
            443
        } else {
            80
        });
    let mut request = vec![5, 1, 0];
    // socks5: the address resolved here; socks5h: the name, resolved by the proxy.
    let name = host.trim_start_matches('[').trim_end_matches(']');
    let resolved = proxy
        .resolve_target()
        .then(|| details.addrs.first().map(|a| a.ip()))
        .flatten();
    match name.parse::<IpAddr>().ok().or(resolved) {
        Some(IpAddr::V4(ip)) => {
            request.push(1);
            request.extend_from_slice(&ip.octets());
        }
        Some(IpAddr::V6(ip)) => {
            request.push(4);
            request.extend_from_slice(&ip.octets());
        }
        None if name.len() > 255 => {
            return Err(Refusal::Said(
                "the target's host name is too long for SOCKS",
            ));
        }
        None => {
            request.push(3);
            request.push(name.len() as u8);
            request.extend_from_slice(name.as_bytes());
        }
    }
    request.extend_from_slice(&port.to_be_bytes());
    link.write_all(&request)?;
    link.flush()?;
    let mut head = [0u8; 4];
    link.read_exact(&mut head)?;
    if head[0] != 5 {
        return Err(Refusal::Said("not a SOCKS5 proxy"));
    }
    if head[1] != 0 {
        return Err(Refusal::Said(match head[1] {
            2 => "the SOCKS proxy does not allow this connection",
            3 => "the SOCKS proxy says the network is unreachable",
            4 => "the SOCKS proxy says the host is unreachable",
            5 => "the target refused the SOCKS proxy's connection",
            _ => "the SOCKS proxy could not connect to the target",
        }));
    }
    // The bound address, which we do not need, then the port.
    let skip = match head[3] {
        1 => 4,
        4 => 16,
        3 => {
            let mut n = [0u8; 1];
            link.read_exact(&mut n)?;
            n[0] as usize
        }
        _ => return Err(Refusal::Said("a malformed SOCKS reply")),
    };
    let mut rest = vec![0u8; skip + 2];
    link.read_exact(&mut rest)?;
    Ok(())
}

impl std::fmt::Debug for Proxies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Proxies may hold passwords: hosts only.
        f.debug_struct("Proxies")
            .field(
                "global",
                &self.global.as_ref().map(|p| p.host().to_string()),
            )
            .field("platforms", &self.per_platform.keys().collect::<Vec<_>>())
            .finish()
    }
}
