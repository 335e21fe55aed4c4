"""The report page as a reader takes it apart: its elements and attributes, and its tables by id, cell by cell."""

from dataclasses import dataclass, field
from html.parser import HTMLParser

__all__ = ["Page", "parse"]


@dataclass
class Page:
    elements: list[tuple[str, dict[str, str | None]]] = field(default_factory=list)
    """Every start tag, in order, with its attributes."""
    tables: dict[str, list[list[str]]] = field(default_factory=dict)
    """Each table with an id: its rows (the header row first), each cell's text."""
    text: str = ""
    """All the text a reader sees, markup gone and entities decoded."""

    def rows(self, table: str) -> list[list[str]]:
        """The table's rows without its header row."""
        return self.tables[table][1:]

    def column(self, table: str, index: int) -> dict[str, str]:
        """First cell to the cell at `index`, for each row."""
        return {row[0]: row[index] for row in self.rows(table)}


class _Reader(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.page = Page()
        self._table: list[list[str]] | None = None
        self._cell: list[str] | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        self.page.elements.append((tag, found))
        if tag == "table":
            self._table = self.page.tables.setdefault(found.get("id") or f"#{len(self.page.tables)}", [])
        elif tag == "tr" and self._table is not None:
            self._table.append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None and self._table is not None:
            self._table[-1].append("".join(self._cell))
            self._cell = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data: str) -> None:
        self._text.append(data)
        if self._cell is not None:
            self._cell.append(data)


def parse(html: str) -> Page:
    reader = _Reader()
    reader.feed(html)
    reader.close()
    reader.page.text = "".join(reader._text)
    return reader.page
