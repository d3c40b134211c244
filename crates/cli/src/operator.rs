//! Operator commands: tokens and public images, through the application layer on the
//! catalog and blob store the server uses (no server needs to run).

use clap::{Args, Subcommand};
use tidepool_api::{Distribution, ListType, Scopes};
use tidepool_server::app::{App, PublicImageChanges, PublicImageEntry, PublicImageNew};
use tidepool_server::config::StorageArgs;

#[derive(Subcommand)]
pub enum TokenCommand {
    /// Create a token and print it (only the token, on stdout).
    Create {
        #[command(flatten)]
        storage: StorageArgs,
        /// Account the token acts for (created if new).
        #[arg(long)]
        account: String,
        /// Comma-separated scopes.
        #[arg(
            long,
            default_value = "image:read,image:create,image:update,image:delete,tag:create"
        )]
        scopes: String,
    },
}

#[derive(Subcommand)]
pub enum PublicCommand {
    /// List the public images (slug, id, status, listing, name).
    List {
        #[command(flatten)]
        storage: StorageArgs,
    },
    /// Add a public image.
    Add {
        #[command(flatten)]
        storage: StorageArgs,
        #[command(flatten)]
        image: PublicImageArgs,
    },
    /// Change a public image's name, distribution, sizes or listing.
    Update {
        #[command(flatten)]
        storage: StorageArgs,
        /// Slug of the image to change.
        slug: String,
        /// New display name.
        #[arg(long)]
        name: Option<String>,
        /// New distribution.
        #[arg(long)]
        distribution: Option<String>,
        /// New description.
        #[arg(long)]
        description: Option<String>,
        /// New listing: distribution or application.
        #[arg(long)]
        listing: Option<ListType>,
        /// New minimum disk size in GB.
        #[arg(long)]
        min_disk_size: Option<u64>,
        /// New size in GB.
        #[arg(long)]
        size_gigabytes: Option<f64>,
    },
    /// Retire a public image: it leaves the lists but stays readable by id and slug.
    Retire {
        #[command(flatten)]
        storage: StorageArgs,
        /// Slug of the image to retire.
        slug: String,
    },
}

#[derive(Args)]
pub struct PublicImageArgs {
    /// Unique slug, e.g. ubuntu-24-04-x64.
    #[arg(long)]
    slug: String,
    /// Display name.
    #[arg(long)]
    name: String,
    /// Distribution (Ubuntu, Debian, …; anything else is stored as Unknown).
    #[arg(long, default_value = "Unknown")]
    distribution: String,
    /// Which list filter shows it: distribution or application.
    #[arg(long, default_value = "distribution")]
    listing: ListType,
    /// Minimum disk size in GB.
    #[arg(long)]
    min_disk_size: Option<u64>,
    /// Size in GB.
    #[arg(long)]
    size_gigabytes: Option<f64>,
    /// Free-form description.
    #[arg(long, default_value = "")]
    description: String,
}

async fn open(storage: &StorageArgs) -> anyhow::Result<App> {
    tidepool_server::server::open_app(storage).await
}

pub async fn token(cmd: TokenCommand) -> anyhow::Result<()> {
    match cmd {
        TokenCommand::Create {
            storage,
            account,
            scopes,
        } => {
            let scopes: Scopes = scopes.parse().map_err(anyhow::Error::msg)?;
            let secret = open(&storage).await?.token_create(&account, scopes).await?;
            println!("{secret}");
        }
    }
    Ok(())
}

fn print(entry: &PublicImageEntry) {
    let image = &entry.image;
    println!(
        "{}\t{}\t{}\t{}\t{}",
        image.slug.as_deref().unwrap_or("-"),
        image.id,
        image.status,
        entry.listing.map(|l| l.as_str()).unwrap_or("-"),
        image.name
    );
}

pub async fn public(cmd: PublicCommand) -> anyhow::Result<()> {
    match cmd {
        PublicCommand::List { storage } => {
            let app = open(&storage).await?;
            app.public_images_seed().await?;
            for record in app.public_image_list().await? {
                print(&record);
            }
        }
        PublicCommand::Add { storage, image } => {
            let app = open(&storage).await?;
            app.public_images_seed().await?;
            let record = app
                .public_image_create(PublicImageNew {
                    slug: image.slug,
                    name: image.name,
                    distribution: Distribution::from_name(&image.distribution),
                    listing: image.listing,
                    min_disk_size: image.min_disk_size,
                    size_gigabytes: image.size_gigabytes,
                    description: image.description,
                })
                .await?;
            print(&record);
        }
        PublicCommand::Update {
            storage,
            slug,
            name,
            distribution,
            description,
            listing,
            min_disk_size,
            size_gigabytes,
        } => {
            let app = open(&storage).await?;
            let changes = PublicImageChanges {
                name,
                distribution: distribution.as_deref().map(Distribution::from_name),
                description,
                listing,
                min_disk_size,
                size_gigabytes,
            };
            print(&app.public_image_update(&slug, changes).await?);
        }
        PublicCommand::Retire { storage, slug } => {
            print(&open(&storage).await?.public_image_retire(&slug).await?);
        }
    }
    Ok(())
}
