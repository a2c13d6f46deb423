"""Markup Compatibility (ISO/IEC 29500-3) pre-processing, as the Open XML SDK does before it validates.

Excel marks its extension namespaces (x14ac, xr, xr2, xr3, x15, …) ignorable with ``mc:Ignorable`` and
wraps newer markup in ``mc:AlternateContent``. A consumer that does not understand a namespace drops
ignorable attributes and elements in it, and resolves ``mc:AlternateContent`` to the first ``mc:Choice``
whose ``Requires`` namespaces it understands, else to ``mc:Fallback``, else to nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Collection

from lxml import etree

MC = "http://schemas.openxmlformats.org/markup-compatibility/2006"
_IGNORABLE = f"{{{MC}}}Ignorable"
_PROCESS_CONTENT = f"{{{MC}}}ProcessContent"
_MUST_UNDERSTAND = f"{{{MC}}}MustUnderstand"
_PRESERVE_ELEMENTS = f"{{{MC}}}PreserveElements"
_PRESERVE_ATTRIBUTES = f"{{{MC}}}PreserveAttributes"
_ALTERNATE = f"{{{MC}}}AlternateContent"
_CHOICE = f"{{{MC}}}Choice"
_FALLBACK = f"{{{MC}}}Fallback"
XML_NS = "http://www.w3.org/XML/1998/namespace"


def _ns(tag: str) -> str:
    return tag[1:].partition("}")[0] if tag.startswith("{") else ""


def _uris(el: etree._Element, value: str, problem: Callable[[str], None], what: str) -> set[str]:
    out = set()
    for prefix in value.split():
        uri = el.nsmap.get(prefix)
        if uri is None:
            problem(f"{what} names the undeclared prefix {prefix!r}")
        else:
            out.add(uri)
    return out


def _qnames(el: etree._Element, value: str) -> set[tuple[str, str]]:
    """``ProcessContent`` entries as (namespace, local name or "*")."""
    out = set()
    for item in value.split():
        prefix, _, local = item.partition(":")
        uri = el.nsmap.get(prefix)
        if uri is not None:
            out.add((uri, local))
    return out


def preprocess(root: etree._Element, understood: Collection[str], problem: Callable[[str], None]) -> etree._Element:
    """A copy of ``root`` with Markup Compatibility applied for a consumer that understands ``understood``.

    ``problem`` receives messages for markup a consumer must refuse (a ``MustUnderstand`` namespace it
    does not understand, an ``AlternateContent`` that is malformed).
    """
    known = set(understood) | {MC, XML_NS, ""}
    copy = etree.fromstring(etree.tostring(root))
    _process(copy, known, frozenset(), frozenset(), problem)
    etree.cleanup_namespaces(copy)
    return copy


def _process(el: etree._Element, known: set[str], ignorable: frozenset[str],
             process_content: frozenset[tuple[str, str]], problem: Callable[[str], None]) -> None:
    ign = el.get(_IGNORABLE)
    if ign is not None:
        ignorable = ignorable | _uris(el, ign, problem, "mc:Ignorable")
    pc = el.get(_PROCESS_CONTENT)
    if pc is not None:
        process_content = process_content | _qnames(el, pc)
    must = el.get(_MUST_UNDERSTAND)
    if must is not None:
        for uri in _uris(el, must, problem, "mc:MustUnderstand"):
            if uri not in known:
                problem(f"mc:MustUnderstand names {uri}, which a consumer of the standard schemas cannot read")
    for name in list(el.attrib):
        uri = _ns(name)
        if uri == MC:
            if name not in (_IGNORABLE, _PROCESS_CONTENT, _MUST_UNDERSTAND, _PRESERVE_ELEMENTS,
                            _PRESERVE_ATTRIBUTES):
                problem(f"unknown markup-compatibility attribute {name}")
            del el.attrib[name]
        elif uri not in known and uri in ignorable:
            del el.attrib[name]
    if etree.QName(el).localname == "ext" and el.get("uri") is not None:
        return  # an extension's content is opaque: kept as written, validated laxly (xsd:any)
    for child in list(el):
        if not isinstance(child.tag, str):
            continue  # comments and processing instructions
        replacement = _resolve(child, known, ignorable, process_content, problem)
        if replacement != [child]:
            index = el.index(child)
            el.remove(child)
            for offset, node in enumerate(replacement):
                el.insert(index + offset, node)


def _resolve(node: etree._Element, known: set[str], ignorable: frozenset[str],
             process_content: frozenset[tuple[str, str]], problem: Callable[[str], None]) -> list[etree._Element]:
    """What ``node`` stands for after processing: itself, what an AlternateContent resolves to, the
    children of an ignored ProcessContent element, or nothing."""
    uri = _ns(node.tag)
    if node.tag == _ALTERNATE:
        ign = node.get(_IGNORABLE)
        if ign is not None:
            ignorable = ignorable | _uris(node, ign, problem, "mc:Ignorable")
        out: list[etree._Element] = []
        for chosen in _choose(node, known, problem):
            if isinstance(chosen.tag, str):
                out.extend(_resolve(chosen, known, ignorable, process_content, problem))
        return out
    if uri == MC:
        problem(f"mc element {etree.QName(node).localname} outside mc:AlternateContent")
        return []
    if uri not in known and uri in ignorable:
        local = etree.QName(node).localname
        if (uri, local) in process_content or (uri, "*") in process_content:
            out = []
            for child in node:
                if isinstance(child.tag, str):
                    out.extend(_resolve(child, known, ignorable, process_content, problem))
            return out
        return []
    _process(node, known, ignorable, process_content, problem)
    return [node]


def _choose(alt: etree._Element, known: set[str], problem: Callable[[str], None]) -> list[etree._Element]:
    fallback: list[etree._Element] | None = None
    for branch in alt:
        if not isinstance(branch.tag, str):
            continue
        if branch.tag == _CHOICE:
            if fallback is not None:
                problem("mc:Choice after mc:Fallback")
            requires = branch.get("Requires")
            if requires is None:
                problem("mc:Choice without Requires")
                continue
            if _uris(branch, requires, problem, "mc:Choice Requires") <= known:
                return list(branch)
        elif branch.tag == _FALLBACK:
            fallback = list(branch)
        else:
            problem(f"unexpected {branch.tag} inside mc:AlternateContent")
    return fallback or []
