//! Token scopes, named as DigitalOcean names them (`image:read`, …).

use std::fmt;
use std::str::FromStr;

/// A permission a token may carry, named as DigitalOcean names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Scope {
    ImageRead = 1,
    ImageCreate = 2,
    ImageUpdate = 4,
    ImageDelete = 8,
    TagCreate = 16,
}

impl Scope {
    pub const ALL: [Scope; 5] = [
        Scope::ImageRead,
        Scope::ImageCreate,
        Scope::ImageUpdate,
        Scope::ImageDelete,
        Scope::TagCreate,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::ImageRead => "image:read",
            Scope::ImageCreate => "image:create",
            Scope::ImageUpdate => "image:update",
            Scope::ImageDelete => "image:delete",
            Scope::TagCreate => "tag:create",
        }
    }
}

/// A set of scopes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Scopes(u8);

impl Scopes {
    pub fn all() -> Self {
        Scopes(Scope::ALL.iter().fold(0, |acc, s| acc | *s as u8))
    }

    pub fn contains(self, scope: Scope) -> bool {
        self.0 & scope as u8 != 0
    }
}

impl FromStr for Scopes {
    type Err = String;

    /// Parses `image:read,image:create`; `image:*` and `*` are shorthands for every scope.
    fn from_str(s: &str) -> Result<Self, String> {
        let mut bits = 0u8;
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            if part == "*" || part == "image:*" {
                bits |= Scopes::all().0;
                continue;
            }
            let scope = Scope::ALL
                .iter()
                .find(|sc| sc.as_str() == part)
                .ok_or_else(|| {
                    let names: Vec<_> = Scope::ALL.iter().map(|s| s.as_str()).collect();
                    format!("unknown scope {part:?}; known scopes: {}", names.join(", "))
                })?;
            bits |= *scope as u8;
        }
        if bits == 0 {
            return Err("a token needs at least one scope".into());
        }
        Ok(Scopes(bits))
    }
}

impl fmt::Display for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<_> = Scope::ALL
            .iter()
            .filter(|s| self.contains(**s))
            .map(|s| s.as_str())
            .collect();
        f.write_str(&names.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_parse_and_print() {
        let s: Scopes = "image:read, tag:create".parse().unwrap();
        assert!(s.contains(Scope::ImageRead) && s.contains(Scope::TagCreate));
        assert!(!s.contains(Scope::ImageDelete));
        assert_eq!(s.to_string(), "image:read,tag:create");
        assert!("image:fly"
            .parse::<Scopes>()
            .unwrap_err()
            .contains("image:fly"));
        assert!("".parse::<Scopes>().is_err());
    }
}
