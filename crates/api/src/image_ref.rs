//! How a request names an image: by id, or by the slug of a public image.

/// How a GET names an image: by id, or for public images also by slug.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ImageRef {
    /// The numeric id; works for every image.
    Id(u64),
    /// The slug of a public image, e.g. `ubuntu-24-04-x64`.
    Slug(String),
}

impl From<u64> for ImageRef {
    fn from(id: u64) -> Self {
        ImageRef::Id(id)
    }
}

impl From<&str> for ImageRef {
    /// All digits is an id (as DigitalOcean reads the path), anything else a slug.
    fn from(s: &str) -> Self {
        match s.parse() {
            Ok(id) if s.bytes().all(|b| b.is_ascii_digit()) => ImageRef::Id(id),
            _ => ImageRef::Slug(s.to_owned()),
        }
    }
}

impl From<String> for ImageRef {
    fn from(s: String) -> Self {
        ImageRef::from(s.as_str())
    }
}

impl From<&String> for ImageRef {
    fn from(s: &String) -> Self {
        ImageRef::from(s.as_str())
    }
}

impl std::fmt::Display for ImageRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ImageRef::Id(id) => write!(f, "{id}"),
            ImageRef::Slug(slug) => f.write_str(slug),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_refs_read_digits_as_ids() {
        assert_eq!(ImageRef::from("42"), ImageRef::Id(42));
        assert_eq!(
            ImageRef::from("ubuntu-24-04-x64"),
            ImageRef::Slug("ubuntu-24-04-x64".into())
        );
        assert_eq!(ImageRef::from("+4"), ImageRef::Slug("+4".into()));
    }
}
