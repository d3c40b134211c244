//! How images are printed: an aligned table with chosen columns, or the API's JSON objects.

use std::io::Write;
use tidepool_client::Image;

/// `--output`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// An aligned table (columns with --format).
    Text,
    /// The API's objects: an image, or for `list` the array of images.
    Json,
}

/// A column of the table; `--format` names them, case-insensitively. Each is the image
/// attribute of the same name (`MinDisk`: `min_disk_size`, `Size`: `size_gigabytes`, `Error`:
/// `error_message`); lists are comma-joined, nulls empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum Column {
    Id,
    Name,
    Type,
    Distribution,
    Slug,
    Public,
    MinDisk,
    Size,
    Status,
    Regions,
    Created,
    Tags,
    Description,
    Error,
}

impl Column {
    const ALL: [Column; 14] = [
        Column::Id,
        Column::Name,
        Column::Type,
        Column::Distribution,
        Column::Slug,
        Column::Public,
        Column::MinDisk,
        Column::Size,
        Column::Status,
        Column::Regions,
        Column::Created,
        Column::Tags,
        Column::Description,
        Column::Error,
    ];

    /// doctl's columns for images, and the status, which matters while imports run.
    pub const DEFAULT: [Column; 8] = [
        Column::Id,
        Column::Name,
        Column::Type,
        Column::Distribution,
        Column::Slug,
        Column::Public,
        Column::MinDisk,
        Column::Status,
    ];

    fn header(self) -> &'static str {
        match self {
            Column::Id => "ID",
            Column::Name => "Name",
            Column::Type => "Type",
            Column::Distribution => "Distribution",
            Column::Slug => "Slug",
            Column::Public => "Public",
            Column::MinDisk => "MinDisk",
            Column::Size => "Size",
            Column::Status => "Status",
            Column::Regions => "Regions",
            Column::Created => "Created",
            Column::Tags => "Tags",
            Column::Description => "Description",
            Column::Error => "Error",
        }
    }

    /// The cell; sizes are plain numbers (GB) so that scripts can read them.
    fn cell(self, image: &Image) -> String {
        match self {
            Column::Id => image.id.to_string(),
            Column::Name => image.name.clone(),
            Column::Type => image.kind.to_string(),
            Column::Distribution => image.distribution.to_string(),
            Column::Slug => image.slug.clone().unwrap_or_default(),
            Column::Public => image.public.to_string(),
            Column::MinDisk => image
                .min_disk_size
                .map(|n| n.to_string())
                .unwrap_or_default(),
            Column::Size => image
                .size_gigabytes
                .map(|n| n.to_string())
                .unwrap_or_default(),
            Column::Status => image.status.to_string(),
            Column::Regions => join(image.regions.iter().map(|r| r.as_str())),
            Column::Created => image.created_at.clone(),
            Column::Tags => join(image.tags.iter().map(String::as_str)),
            Column::Description => image.description.clone(),
            Column::Error => image.error_message.clone(),
        }
    }

    /// Parses one name of `--format` (clap's value parser).
    pub fn parse(s: &str) -> Result<Column, String> {
        Column::ALL
            .into_iter()
            .find(|c| c.header().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| {
                let names: Vec<_> = Column::ALL.iter().map(|c| c.header()).collect();
                format!("unknown column {s:?}; expected: {}", names.join(","))
            })
    }
}

fn join<'a>(items: impl Iterator<Item = &'a str>) -> String {
    items.collect::<Vec<_>>().join(",")
}

/// What and how to print, from the command line.
#[derive(Debug, Clone)]
pub struct Printer {
    /// Table or JSON.
    pub format: OutputFormat,
    /// The table's columns, in order.
    pub columns: Vec<Column>,
    /// Whether the table starts with the column names.
    pub header: bool,
}

impl Printer {
    /// One image: a one-row table, or the image object.
    pub fn image(&self, image: &Image) -> std::io::Result<()> {
        match self.format {
            OutputFormat::Json => json(serde_json::to_string_pretty(image)?),
            OutputFormat::Text => self.table(std::slice::from_ref(image)),
        }
    }

    /// A list: a table, or the array of image objects.
    pub fn images(&self, images: &[Image]) -> std::io::Result<()> {
        match self.format {
            OutputFormat::Json => json(serde_json::to_string_pretty(images)?),
            OutputFormat::Text => self.table(images),
        }
    }

    fn table(&self, images: &[Image]) -> std::io::Result<()> {
        let mut rows: Vec<Vec<String>> = Vec::with_capacity(images.len() + 1);
        if self.header {
            rows.push(self.columns.iter().map(|c| c.header().to_owned()).collect());
        }
        rows.extend(
            images
                .iter()
                .map(|i| self.columns.iter().map(|c| c.cell(i)).collect()),
        );
        let mut out = std::io::stdout().lock();
        out.write_all(render(&rows).as_bytes())?;
        out.flush()
    }
}

/// JSON made from the typed value, so that keys keep the API's order.
fn json(text: String) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}")?;
    out.flush()
}

/// Rows padded to the widest cell of each column, three spaces apart, no trailing blanks.
/// Widths count characters, so accented names line up too.
pub fn render(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut text = String::new();
    for row in rows {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            if c > 0 {
                line.push_str("   ");
            }
            line.push_str(cell);
            let pad = widths[c] - cell.chars().count();
            line.extend(std::iter::repeat_n(' ', pad));
        }
        text.push_str(line.trim_end());
        text.push('\n');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_line_up() {
        let rows = vec![
            vec!["ID".into(), "Name".into(), "Slug".into()],
            vec!["7".into(), "é-long-name".into(), "".into()],
            vec!["12".into(), "x".into(), "s".into()],
        ];
        assert_eq!(
            render(&rows),
            "ID   Name          Slug\n7    é-long-name\n12   x             s\n"
        );
    }

    #[test]
    fn column_names_are_case_insensitive() {
        assert_eq!(Column::parse("mindisk"), Ok(Column::MinDisk));
        assert!(Column::parse("Colour").unwrap_err().contains("MinDisk"));
    }
}
