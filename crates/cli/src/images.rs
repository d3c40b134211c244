//! `tidepool images list|get|create|update|delete|wait`: the Images API from the command line,
//! in the manner of `doctl compute image`, over the `tidepool-client` library.

mod failure;
mod output;
mod progress;

use clap::{Args, Subcommand};
use failure::{Exit, Failure, EXIT_CODES};
use output::{Column, OutputFormat, Printer};
use std::io::IsTerminal;
use std::process::ExitCode;
use std::str::FromStr;
use std::time::Duration;
use tidepool_client::{
    Client, Distribution, Image, ImageCreate, ImageListQuery, ImageUpdate, ListType, Region,
    WaitOptions, DIGITALOCEAN_API_URL, LOCAL_TIDEPOOL_URL,
};

/// `tidepool images …` and the options every subcommand shares.
#[derive(Args, Debug)]
#[command(after_help = EXIT_CODES)]
pub struct ImagesArgs {
    #[command(flatten)]
    target: Target,
    #[command(flatten)]
    print: PrintArgs,
    #[command(subcommand)]
    command: ImagesCommand,
}

/// Which server, as whom.
#[derive(Args, Debug)]
struct Target {
    /// The API's root: a tidepool server, or https://api.digitalocean.com.
    #[arg(long, env = "TIDEPOOL_API_URL", default_value = LOCAL_TIDEPOOL_URL, global = true)]
    api_url: String,
    /// API token. With DigitalOcean's URL, DIGITALOCEAN_ACCESS_TOKEN or DIGITALOCEAN_TOKEN
    /// are read when this is not given.
    #[arg(long, env = "TIDEPOOL_TOKEN", hide_env_values = true, global = true)]
    token: Option<String>,
}

#[derive(Args, Debug)]
struct PrintArgs {
    /// Output: an aligned table, or the API's JSON objects (`list`: the array of images).
    #[arg(long, short = 'o', value_enum, default_value_t = OutputFormat::Text, global = true)]
    output: OutputFormat,
    /// Table columns, comma-separated: ID,Name,Type,Distribution,Slug,Public,MinDisk,Size,
    /// Status,Regions,Created,Tags,Description,Error [default: ID,Name,Type,Distribution,Slug,
    /// Public,MinDisk,Status].
    #[arg(long, value_delimiter = ',', value_parser = Column::parse, global = true)]
    format: Vec<Column>,
    /// Leave out the table's header line.
    #[arg(long, global = true)]
    no_header: bool,
}

#[derive(Subcommand, Debug)]
enum ImagesCommand {
    /// List images: one page, or every page with --all.
    #[command(visible_alias = "ls", after_help = EXIT_CODES)]
    List(ListArgs),
    /// Show one image, by id or (public images) by slug.
    #[command(after_help = EXIT_CODES)]
    Get {
        /// Image id, or the slug of a public image.
        image: String,
    },
    /// Import a custom image from a URL.
    #[command(after_help = EXIT_CODES)]
    Create(CreateArgs),
    /// Rename an image, or change the distribution or description of a custom one.
    #[command(after_help = EXIT_CODES)]
    Update(UpdateArgs),
    /// Delete images.
    #[command(visible_alias = "rm", after_help = EXIT_CODES)]
    Delete {
        /// Image ids.
        #[arg(required = true, num_args = 1..)]
        ids: Vec<u64>,
        /// Delete without asking (needed when standard input is not a terminal).
        #[arg(long, short)]
        force: bool,
    },
    /// Wait until an image's import finishes; print the image, or fail with its error.
    #[command(after_help = EXIT_CODES)]
    Wait {
        /// Image id.
        id: u64,
        #[command(flatten)]
        wait: WaitArgs,
    },
}

#[derive(Args, Debug)]
struct ListArgs {
    /// Public images of one kind: distribution (OS images) or application (1-Click apps).
    #[arg(long = "type", value_parser = wire::<ListType>)]
    kind: Option<ListType>,
    /// Only your own images.
    #[arg(long)]
    private: bool,
    /// Only images with this tag.
    #[arg(long)]
    tag: Option<String>,
    /// Page number, from 1.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..), conflicts_with = "all")]
    page: Option<u32>,
    /// Images per page, 1 to 200 [default: the server's, 20; 200 with --all].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=200))]
    per_page: Option<u32>,
    /// Every page, following the API's `next` links.
    #[arg(long)]
    all: bool,
}

#[derive(Args, Debug)]
struct CreateArgs {
    /// Name of the new image.
    name: String,
    /// Where the server fetches the image (raw, qcow2, vhdx, vdi or vmdk; gzip or bzip2).
    #[arg(long)]
    url: String,
    /// Region the image is first available in (nyc3, fra1, …).
    #[arg(long, value_parser = wire::<Region>)]
    region: Region,
    /// Distribution: Ubuntu, Debian, Fedora, … (see the API's list).
    #[arg(long, value_parser = distribution)]
    distribution: Option<Distribution>,
    /// Free-form description.
    #[arg(long)]
    description: Option<String>,
    /// A tag; repeat for more.
    #[arg(long = "tag")]
    tags: Vec<String>,
    /// Wait for the import; show its progress; fail (exit 5) when it fails.
    #[arg(long)]
    wait: bool,
    #[command(flatten)]
    waiting: WaitArgs,
}

#[derive(Args, Debug)]
struct WaitArgs {
    /// Seconds between two looks at the import.
    #[arg(long, default_value_t = 2.0, value_parser = positive_secs)]
    poll_interval: f64,
    /// Give up after this many seconds [default: never].
    #[arg(long, value_parser = positive_secs)]
    timeout: Option<f64>,
}

#[derive(Args, Debug)]
struct UpdateArgs {
    /// Image id.
    id: u64,
    #[command(flatten)]
    change: Change,
}

/// At least one of these; a group of its own so that the id does not count as a change.
#[derive(Args, Debug)]
#[group(required = true, multiple = true)]
struct Change {
    /// New name.
    #[arg(long)]
    name: Option<String>,
    /// New distribution (custom images only).
    #[arg(long, value_parser = distribution)]
    distribution: Option<Distribution>,
    /// New description (custom images only).
    #[arg(long)]
    description: Option<String>,
}

/// A wire enum of tidepool-api; its error lists the accepted spellings.
fn wire<T: FromStr<Err = tidepool_client::api::UnknownValue>>(s: &str) -> Result<T, String> {
    s.parse()
        .map_err(|e: tidepool_client::api::UnknownValue| e.to_string())
}

/// The API takes any distribution and stores unknown ones as `Unknown`; on the command line a
/// typo is more likely than a new distribution, so only known names pass (any case).
fn distribution(s: &str) -> Result<Distribution, String> {
    Distribution::ALL
        .iter()
        .copied()
        .find(|d| d.as_str().eq_ignore_ascii_case(s.trim()))
        .ok_or_else(|| {
            let names: Vec<_> = Distribution::ALL.iter().map(|d| d.as_str()).collect();
            format!(
                "unknown distribution {s:?}; expected one of: {}",
                names.join(", ")
            )
        })
}

fn positive_secs(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(n) if n > 0.0 && n.is_finite() => Ok(n),
        _ => Err(format!("{s:?} is not a positive number of seconds")),
    }
}

impl WaitArgs {
    fn options(&self) -> WaitOptions {
        WaitOptions {
            poll_interval: Duration::from_secs_f64(self.poll_interval),
            timeout: self.timeout.map(Duration::from_secs_f64),
        }
    }
}

/// Runs `tidepool images …`; failures are printed here, so the caller only exits.
pub async fn run(args: ImagesArgs) -> ExitCode {
    let printer = Printer {
        format: args.print.output,
        columns: if args.print.format.is_empty() {
            Column::DEFAULT.to_vec()
        } else {
            args.print.format.clone()
        },
        header: !args.print.no_header,
    };
    let outcome = match connect(&args.target) {
        Ok(client) => dispatch(&client, args.command, &printer).await,
        Err(failure) => Err(failure),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => failure.report(),
    }
}

/// The token: `--token`/`TIDEPOOL_TOKEN`, or for DigitalOcean's own URL its usual variables.
fn connect(target: &Target) -> Result<Client, Failure> {
    let is_digitalocean = target.api_url.trim_end_matches('/') == DIGITALOCEAN_API_URL;
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    let token = target
        .token
        .clone()
        .filter(|t| !t.trim().is_empty())
        .or_else(|| {
            is_digitalocean
                .then(|| env("DIGITALOCEAN_ACCESS_TOKEN").or_else(|| env("DIGITALOCEAN_TOKEN")))
                .flatten()
        })
        .ok_or_else(|| {
            Failure::new(
                Exit::Auth,
                "authentication failed: no token given (use --token or set TIDEPOOL_TOKEN)",
            )
        })?;
    Client::builder()
        .base_url(&target.api_url)
        .token(token)
        .build()
        .map_err(|e| Failure::from_client(e, None))
}

async fn dispatch(
    client: &Client,
    command: ImagesCommand,
    printer: &Printer,
) -> Result<(), Failure> {
    let printed = |r: std::io::Result<()>| {
        r.map_err(|e| Failure::new(Exit::Failure, format!("cannot write the output: {e}")))
    };
    match command {
        ImagesCommand::List(list) => {
            let images = list_images(client, &list).await?;
            printed(printer.images(&images))
        }
        ImagesCommand::Get { image } => {
            let found = client
                .image_get(&image)
                .await
                .map_err(|e| Failure::from_client(e, Some(&image)))?;
            printed(printer.image(&found))
        }
        ImagesCommand::Create(create) => {
            let body = ImageCreate {
                name: create.name,
                url: create.url,
                region: create.region,
                distribution: create.distribution,
                description: create.description,
                tags: (!create.tags.is_empty()).then_some(create.tags),
            };
            let image = client
                .image_create(&body)
                .await
                .map_err(|e| Failure::from_client(e, None))?;
            let image = if create.wait {
                wait(client, image.id, &create.waiting).await?
            } else {
                image
            };
            printed(printer.image(&image))
        }
        ImagesCommand::Update(update) => {
            let body = ImageUpdate {
                name: update.change.name,
                distribution: update.change.distribution,
                description: update.change.description,
            };
            let image = client
                .image_update(update.id, &body)
                .await
                .map_err(|e| Failure::from_client(e, Some(&update.id.to_string())))?;
            printed(printer.image(&image))
        }
        ImagesCommand::Delete { ids, force } => delete(client, &ids, force).await,
        ImagesCommand::Wait { id, wait: args } => {
            let image = wait(client, id, &args).await?;
            printed(printer.image(&image))
        }
    }
}

async fn list_images(client: &Client, list: &ListArgs) -> Result<Vec<Image>, Failure> {
    let query = ImageListQuery {
        kind: list.kind,
        private: list.private.then_some(true),
        tag_name: list.tag.clone(),
        page: list.page,
        // Fewer requests against the rate limit when walking everything.
        per_page: list
            .per_page
            .or(list.all.then_some(tidepool_client::api::MAX_PER_PAGE)),
    };
    let listed = if list.all {
        client.images_all(&query).await
    } else {
        client.images_list(&query).await.map(|page| page.images)
    };
    listed.map_err(|e| Failure::from_client(e, None))
}

async fn wait(client: &Client, id: u64, args: &WaitArgs) -> Result<Image, Failure> {
    let mut reporter = progress::Reporter::new(id, std::io::stderr().is_terminal());
    let outcome = client
        .wait_until_available_with(id, &args.options(), |p| reporter.update(p))
        .await;
    reporter.finish();
    outcome.map_err(|e| Failure::from_client(e, Some(&id.to_string())))
}

async fn delete(client: &Client, ids: &[u64], force: bool) -> Result<(), Failure> {
    if !force {
        if !std::io::stdin().is_terminal() {
            return Err(Failure::new(
                Exit::Usage,
                "not deleting without confirmation: pass --force when standard input is not a terminal",
            ));
        }
        if !confirm(ids) {
            return Err(Failure::new(Exit::Failure, "nothing deleted"));
        }
    }
    // Every id is tried and every failure printed as it comes; the first decides the exit code.
    let mut first: Option<Exit> = None;
    for id in ids {
        if let Err(e) = client.image_delete(*id).await {
            let failure = Failure::from_client(e, Some(&id.to_string()));
            failure.report();
            first.get_or_insert(failure.exit);
        }
    }
    first.map_or(Ok(()), |exit| Err(Failure::new(exit, "")))
}

fn confirm(ids: &[u64]) -> bool {
    let list: Vec<String> = ids.iter().map(u64::to_string).collect();
    eprint!(
        "Delete image{} {}? [y/N] ",
        if ids.len() > 1 { "s" } else { "" },
        list.join(", ")
    );
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer).is_ok()
        && matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes")
}
