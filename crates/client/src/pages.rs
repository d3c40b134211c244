//! Every page of a list, one image at a time, by following `links.pages.next`.

use crate::client::Client;
use crate::error::Result;
use futures::stream::{self, BoxStream, StreamExt, TryStreamExt};
use std::collections::HashSet;
use tidepool_api::{Image, ImageListQuery};
use url::Url;

impl Client {
    /// Every image the query matches, across all pages, each once, starting at `query.page`
    /// (or the first). Follows `links.pages.next` until a page has none.
    ///
    /// The bearer token never leaves the client's own server: a `next` link to another origin
    /// is read as a path and query on the client's base URL. An image seen on an earlier page
    /// (the list shifted under the walk) is not returned twice.
    pub fn images_stream(&self, query: &ImageListQuery) -> BoxStream<'static, Result<Image>> {
        struct Walk {
            client: Client,
            query: ImageListQuery,
            next: Option<Url>,
            started: bool,
            seen: HashSet<u64>,
        }
        let walk = Walk {
            client: self.clone(),
            query: query.clone(),
            next: None,
            started: false,
            seen: HashSet::new(),
        };
        stream::try_unfold(walk, |mut walk| async move {
            let page = match (walk.started, walk.next.take()) {
                (false, _) => walk.client.images_list(&walk.query).await?,
                (true, Some(url)) => walk.client.list_page(url).await?,
                (true, None) => return Ok(None),
            };
            walk.started = true;
            walk.next = match page.links.pages.next.as_deref() {
                // An empty page with a `next` would loop forever on a confused server.
                Some(next) if !page.images.is_empty() => Some(walk.client.same_origin(next)?),
                _ => None,
            };
            let fresh: Vec<Image> = page
                .images
                .into_iter()
                .filter(|i| walk.seen.insert(i.id))
                .collect();
            Ok(Some((fresh, walk)))
        })
        .map_ok(|images| stream::iter(images.into_iter().map(Ok)))
        .try_flatten()
        .boxed()
    }

    /// Every image the query matches, across all pages, collected.
    pub async fn images_all(&self, query: &ImageListQuery) -> Result<Vec<Image>> {
        self.images_stream(query).try_collect().await
    }

    /// `link` when it is on the base URL's origin; otherwise its query on the base URL's
    /// `v2/images` (a server behind a proxy may name itself differently).
    fn same_origin(&self, link: &str) -> Result<Url> {
        let base = self.base_url();
        match Url::parse(link).or_else(|_| base.join(link.trim_start_matches('/'))) {
            Ok(url) if url.origin() == base.origin() => Ok(url),
            Ok(url) => {
                let mut rebased = self.url(&["v2", "images"]);
                rebased.set_query(url.query());
                Ok(rebased)
            }
            Err(e) => Err(crate::Error::Decode {
                url: base.to_string(),
                status: 200,
                detail: format!("links.pages.next {link:?} is not a URL: {e}"),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_links_stay_on_the_clients_origin() {
        let c = Client::builder()
            .base_url("http://127.0.0.1:9/p/")
            .token("t")
            .build()
            .unwrap();
        assert_eq!(
            c.same_origin("http://127.0.0.1:9/p/v2/images?page=2")
                .unwrap()
                .as_str(),
            "http://127.0.0.1:9/p/v2/images?page=2"
        );
        assert_eq!(
            c.same_origin("https://evil.example/v2/images?page=3&per_page=2")
                .unwrap()
                .as_str(),
            "http://127.0.0.1:9/p/v2/images?page=3&per_page=2"
        );
    }
}
