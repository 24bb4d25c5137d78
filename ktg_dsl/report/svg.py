"""SVG ready to sit inside a page: the graph drawn by ``render`` (Graphviz) with its stable ids
(``node:<name>``, ``edge:<key>``; a prefix keeps several graphs on one page apart), and any
SVG file (matplotlib's pictures) stripped of what a page does not need: the XML header, the
DTD, metadata and namespace declarations, the only web addresses in such files (never fetched,
but a page that holds none is plainly offline)."""

from __future__ import annotations

import re

from ..errors import KtgRuntimeError
from ..graph import GraphReport
from ..spec.schema import Spec

_HEAD = re.compile(r"^.*?(?=<svg[\s>])", re.S)
_XMLNS = re.compile(r'\s+xmlns(?::\w+)?="[^"]*"')
_METADATA = re.compile(r"<metadata>.*?</metadata>\s*", re.S)
_ID = re.compile(r'\bid="')
_HREF = re.compile(r'(xlink:href|href)="#')
_URL = re.compile(r"url\(#")
_LINK_TITLE = re.compile(r'\s+xlink:title="[^"]*"')
_SIZE = re.compile(r'<svg width="([\d.]+)pt" height="([\d.]+)pt"')


def inline_svg(text: str, prefix: str = "") -> str:
    """An SVG document as an element of a page; ``prefix`` goes before every id and every
    reference to one (``href="#..."``, ``url(#...)``) so two pictures never share an id."""
    head = _HEAD.match(text)
    if head is None:
        raise KtgRuntimeError("not an SVG picture (no <svg> element)")
    body = _METADATA.sub("", _XMLNS.sub("", text[head.end() :]))
    if prefix:
        body = _ID.sub(f'id="{prefix}', body)
        body = _HREF.sub(rf'\1="#{prefix}', body)
        body = _URL.sub(f"url(#{prefix}", body)
    return body.strip()


# what a picture from another tool (or a file edited by hand) may hold that would run a
# script in the page or fetch something: such a picture is not embedded
_UNSAFE = re.compile(
    r"<\s*(script|foreignObject|iframe|object|embed|image|img|a)[\s/>]"  # elements
    r"|\son[a-z]+\s*="  # event handlers
    r"|\ssrc\s*="
    r"|href\s*=\s*(?![\"']?#)"  # a link anywhere but inside the picture
    r"|url\(\s*(?![\"']?#)|@import|javascript:|https?:",
    re.I,
)


def safe_svg(text: str, prefix: str = "") -> str:
    """``inline_svg`` for a picture ktg did not draw itself (a study's curves.svg): refused,
    with why, when it is not one well-formed SVG element or holds anything that could run or
    fetch (a script, an event handler, a link or address outside the picture)."""
    from xml.etree import ElementTree

    body = inline_svg(text, prefix)
    try:  # from its <svg> on (inline_svg found it): one element, nothing after it
        ElementTree.fromstring(text[_HEAD.match(text).end() :])  # type: ignore[union-attr]
    except ElementTree.ParseError as exc:
        raise KtgRuntimeError(f"not a well-formed SVG picture ({exc})") from None
    found = _UNSAFE.search(body)
    if found:
        raise KtgRuntimeError(
            f"left out: it holds {found.group(0).strip()!r}, which a self-contained page "
            "must not (a script, an event handler, or a link or address outside the picture)"
        )
    return body


def graph_svg(spec: Spec, graph: GraphReport, prefix: str = "") -> str:
    """The graph as ``ktg render`` draws it (every edge at its full look: the page restyles
    each by its numbers at the chosen epoch), sized to its box (the page scales it)."""
    from ..render.graph import build_dot
    from ..render.output import ports, render_bytes

    dot = build_dot(spec, graph, ports=ports(spec, graph))
    text = render_bytes(dot, "svg", f"the picture of {spec.name}").decode("utf-8")
    # the page's script writes each edge's numbers into its <title> (and its tooltip); the
    # links' own static titles would win over them
    svg = _LINK_TITLE.sub("", inline_svg(text, prefix))
    # the page sets the width; the viewBox keeps the proportions
    return _SIZE.sub(r'<svg class="graph" data-width="\1" data-height="\2"', svg, count=1)
