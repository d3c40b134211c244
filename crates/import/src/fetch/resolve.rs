//! A DNS resolver that drops non-public addresses, so the connection itself — not just the URL's
//! text — can only reach public hosts. Checking at resolution time, inside the client, also closes
//! the gap where a name resolves to a public address for a check and a private one for the
//! connect (DNS rebinding).

use std::net::SocketAddr;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use super::guard::{classify, Refused};

#[derive(Debug, Clone, Copy)]
pub struct PublicOnlyResolver;

impl Resolve for PublicOnlyResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs = resolve_public(&host).await?;
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// Resolves `host` and keeps only public addresses; none left is an error.
pub async fn resolve_public(
    host: &str,
) -> Result<Vec<SocketAddr>, Box<dyn std::error::Error + Send + Sync>> {
    // The port is a placeholder: the connector sets the URL's port on what we return.
    let all: Vec<SocketAddr> = tokio::net::lookup_host((host, 0)).await?.collect();
    let public: Vec<SocketAddr> = all
        .iter()
        .copied()
        .filter(|a| classify(a.ip()).is_none())
        .collect();
    if public.is_empty() {
        tracing::info!(
            addresses = ?all.iter().map(|a| a.ip()).collect::<Vec<_>>(),
            "refused an image host that resolves only to non-public addresses"
        );
        return Err(Box::new(Refused::NoPublicAddress));
    }
    Ok(public)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn localhost_is_refused() {
        let err = resolve_public("localhost").await.unwrap_err();
        assert!(err.downcast_ref::<Refused>().is_some(), "{err}");
        let err = resolve_public("127.0.0.1").await.unwrap_err();
        assert!(err.downcast_ref::<Refused>().is_some(), "{err}");
    }
}
