use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// A string that names no value of the enum it was parsed as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownValue {
    /// What kind of value was expected (`region`, `image type`, …).
    pub kind: &'static str,
    /// The string that was given.
    pub value: String,
    /// Every accepted spelling.
    pub expected: &'static [&'static str],
}

impl fmt::Display for UnknownValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown {} {:?}; expected one of: {}",
            self.kind,
            self.value,
            self.expected.join(", ")
        )
    }
}

impl std::error::Error for UnknownValue {}

/// Declares a closed string enum with its exact wire spellings, `as_str`, `FromStr`,
/// `Display` and serde in both directions.
macro_rules! wire_enum {
    ($(#[$meta:meta])* $name:ident, $kind:literal, { $($(#[$vmeta:meta])* $variant:ident => $wire:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $($(#[$vmeta])* $variant),+ }

        impl $name {
            /// Every value, in the specification's order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            /// Every wire spelling, in the specification's order.
            pub const NAMES: &'static [&'static str] = &[$($wire),+];

            /// The spelling on the wire.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $wire),+ }
            }
        }

        impl FromStr for $name {
            type Err = UnknownValue;
            fn from_str(s: &str) -> Result<Self, UnknownValue> {
                match s {
                    $($wire => Ok($name::$variant),)+
                    _ => Err(UnknownValue { kind: $kind, value: s.to_owned(), expected: Self::NAMES }),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result { f.write_str(self.as_str()) }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> { s.serialize_str(self.as_str()) }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

wire_enum!(
    /// A region slug: the 15 values of the specification's `region_slug`.
    Region, "region", {
        Ams1 => "ams1", Ams2 => "ams2", Ams3 => "ams3", Blr1 => "blr1", Fra1 => "fra1",
        Lon1 => "lon1", Nyc1 => "nyc1", Nyc2 => "nyc2", Nyc3 => "nyc3", Sfo1 => "sfo1",
        Sfo2 => "sfo2", Sfo3 => "sfo3", Sgp1 => "sgp1", Tor1 => "tor1", Syd1 => "syd1",
    }
);

wire_enum!(
    /// The `type` attribute of an image. Not to be confused with [`ListType`].
    ImageType, "image type", {
        /// A DigitalOcean base OS image.
        Base => "base",
        /// A Droplet snapshot; DigitalOcean's public distribution images carry this type too.
        Snapshot => "snapshot",
        /// An automatic Droplet backup.
        Backup => "backup",
        /// An image imported from a URL.
        Custom => "custom",
        /// An image used for managed resources.
        Admin => "admin",
    }
);

wire_enum!(
    /// The lifecycle of an image. `NEW` is upper case on the wire, the rest lower case.
    ImageStatus, "image status", {
        /// Created; the import has not started.
        New => "NEW",
        /// Ready to use.
        Available => "available",
        /// The import is under way.
        Pending => "pending",
        /// Deleted, or an import that failed (then `error_message` says why).
        Deleted => "deleted",
        /// No longer offered for new Droplets.
        Retired => "retired",
    }
);

wire_enum!(
    /// The `type` filter of the list: public OS images or public 1-Click application images.
    ListType, "list type", {
        Distribution => "distribution",
        Application => "application",
    }
);

/// The distribution of an image. DigitalOcean accepts any string here and stores the ones it
/// does not know as `Unknown`, so deserialising never fails on an unknown name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[allow(missing_docs)]
pub enum Distribution {
    ArchLinux,
    CentOs,
    CoreOs,
    Debian,
    Fedora,
    FedoraAtomic,
    FreeBsd,
    Gentoo,
    OpenSuse,
    RancherOs,
    RockyLinux,
    Ubuntu,
    Unknown,
}

impl Distribution {
    /// Every value, in the specification's order.
    pub const ALL: &'static [Distribution] = &[
        Self::ArchLinux,
        Self::CentOs,
        Self::CoreOs,
        Self::Debian,
        Self::Fedora,
        Self::FedoraAtomic,
        Self::FreeBsd,
        Self::Gentoo,
        Self::OpenSuse,
        Self::RancherOs,
        Self::RockyLinux,
        Self::Ubuntu,
        Self::Unknown,
    ];

    /// The spelling on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ArchLinux => "Arch Linux",
            Self::CentOs => "CentOS",
            Self::CoreOs => "CoreOS",
            Self::Debian => "Debian",
            Self::Fedora => "Fedora",
            Self::FedoraAtomic => "Fedora Atomic",
            Self::FreeBsd => "FreeBSD",
            Self::Gentoo => "Gentoo",
            Self::OpenSuse => "openSUSE",
            Self::RancherOs => "RancherOS",
            Self::RockyLinux => "Rocky Linux",
            Self::Ubuntu => "Ubuntu",
            Self::Unknown => "Unknown",
        }
    }

    /// The distribution a name stands for; any name outside the documented list is `Unknown`,
    /// as the specification says ("any other value will be accepted but ignored").
    pub fn from_name(name: &str) -> Self {
        Self::ALL
            .iter()
            .copied()
            .find(|d| d.as_str() == name)
            .unwrap_or(Self::Unknown)
    }
}

impl fmt::Display for Distribution {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Distribution {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Distribution {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Ok(Self::from_name(&s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enums_round_trip_their_wire_spelling() {
        for r in Region::ALL {
            assert_eq!(r.as_str().parse::<Region>().unwrap(), *r);
        }
        assert_eq!(Region::ALL.len(), 15);
        assert_eq!(serde_json::to_string(&ImageStatus::New).unwrap(), "\"NEW\"");
        assert!("new".parse::<ImageStatus>().is_err());
    }

    #[test]
    fn unknown_distribution_reads_as_unknown() {
        let d: Distribution = serde_json::from_str("\"Plan 9\"").unwrap();
        assert_eq!(d, Distribution::Unknown);
        let d: Distribution = serde_json::from_str("\"Rocky Linux\"").unwrap();
        assert_eq!(d, Distribution::RockyLinux);
        assert!(serde_json::from_str::<Distribution>("42").is_err());
    }

    #[test]
    fn unknown_region_error_names_the_choices() {
        let err = "mars1".parse::<Region>().unwrap_err().to_string();
        assert!(err.contains("mars1") && err.contains("nyc3"), "{err}");
    }
}
