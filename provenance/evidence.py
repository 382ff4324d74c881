"""What a reader's page shows of the public log for one entry: the entry, its inclusion proof under
the current checkpoint, the checkpoint as published, who cosigned it and the time-stamps over it.

Read-only: bounded reads of the local log directory (the same files any mirror serves), checked
with the verifier key published beside the checkpoint (never the private key). Whatever is missing
or does not verify makes the evidence unavailable, never an error page.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from dataclasses import dataclass
from datetime import UTC, datetime

from config.settings import Settings
from provenance import merkle
from provenance.appender import published_token_count, published_verifier_key
from provenance.cosignature import CosignatureVerifier, WitnessPolicy
from provenance.log import LogClient
from provenance.note import MAX_NOTE_BYTES, Checkpoint, Ed25519Verifier, open_checkpoint
from provenance.tiles import CHECKPOINT_PATH, DirectoryFetcher, timestamp_path
from provenance.timestamp import MAX_TOKEN_BYTES, describe_token, load_roots, verify_timestamp

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Cosigner:
    """A witness (of SAMIZDAT_WITNESSES) whose cosignature on the checkpoint verified, and when."""

    name: str
    at: datetime


@dataclass(frozen=True)
class Token:
    """A published RFC 3161 token over the checkpoint: its path in the log, issuer and time (both
    None when the TSAs' roots are not configured or it does not verify against them)."""

    path: str
    issuer: str | None
    at: datetime | None


@dataclass(frozen=True)
class CheckpointEvidence:
    """The current checkpoint: its note as published, what it says, its cosigners and tokens."""

    note: str
    checkpoint: Checkpoint
    cosigners: tuple[Cosigner, ...]
    tokens: tuple[Token, ...]


@dataclass(frozen=True)
class Evidence:
    """One entry proven under the current checkpoint: everything a reader needs to check it."""

    index: int
    entry: str
    leaf_hash: str  # hex
    proof: tuple[str, ...]  # hex, leaf to root (RFC 9162)
    size: int
    root_hash: str  # hex
    checkpoint: CheckpointEvidence


# The checkpoint's evidence only changes with the checkpoint file: keep the last one seen per log.
_cache: dict[str, tuple[bytes, CheckpointEvidence]] = {}
_cache_lock = threading.Lock()


def _cosigners(data: bytes, origin: str, verifier: Ed25519Verifier,
               settings: Settings) -> tuple[Cosigner, ...]:
    """The configured witnesses whose cosignature verifies; a bad or unknown one is left out."""
    found = []
    for vkey, _url in settings.witness_list:
        try:
            witness = CosignatureVerifier.from_vkey(vkey)
            stamp = WitnessPolicy((witness,), 0).cosigners(data, origin, verifier).cosigners.get(witness.name)
        except Exception as exc:  # noqa: BLE001 - one bad cosignature hides only itself
            log.debug("cosignature of %s not shown: %s", vkey.split("+")[0], exc)
            continue
        if stamp is not None:
            found.append(Cosigner(witness.name, datetime.fromtimestamp(stamp, UTC)))
    return tuple(found)


def _tokens(fetcher: DirectoryFetcher, settings: Settings, checkpoint: Checkpoint) -> tuple[Token, ...]:
    """The tokens published for this checkpoint's size, each verified when the roots are known."""
    roots = None
    if settings.tsa_roots:
        try:
            roots = load_roots(settings.tsa_roots)
        except Exception as exc:  # noqa: BLE001 - unverified tokens are still linked
            log.warning("time-stamps shown unverified: %s", exc)
    body = checkpoint.tree_head().encode()  # what the tokens cover
    tokens = []
    for k in range(published_token_count(settings.log_path, checkpoint.size)):
        path = timestamp_path(checkpoint.size, k)
        issuer = at = None
        if roots:
            try:
                token = fetcher.fetch(path, MAX_TOKEN_BYTES)
                at = verify_timestamp(token, body, roots)
                issuer = describe_token(token)
            except Exception as exc:  # noqa: BLE001 - a bad token is linked, not vouched for
                log.warning("time-stamp %s does not verify: %s", path, exc)
                issuer = at = None
        tokens.append(Token(path, issuer, at))
    return tuple(tokens)


def checkpoint_evidence(settings: Settings) -> tuple[CheckpointEvidence, Ed25519Verifier] | None:
    """The log's current checkpoint, its signature checked with the published verifier key;
    None when there is none or it does not verify."""
    try:
        vkey = published_verifier_key(settings.log_path)
        if vkey is None:
            return None
        verifier = Ed25519Verifier.from_vkey(vkey)
        fetcher = DirectoryFetcher(settings.log_path)
        data = fetcher.fetch(CHECKPOINT_PATH, MAX_NOTE_BYTES)
        key = str(settings.log_path)
        # Keyed by the note and the key that checked it; a token is published just after its
        # checkpoint, so the count is in the key too and the cache sees it come.
        stamp = hashlib.sha256(data + vkey.encode()).digest() + b"%d" % published_token_count(
            settings.log_path, Checkpoint.parse(data.decode("utf-8").split("\n\n")[0] + "\n").size)
        with _cache_lock:
            cached = _cache.get(key)
        if cached is not None and cached[0] == stamp:
            return cached[1], verifier
        checkpoint, _ = open_checkpoint(data, settings.log_origin_name, verifier)
        evidence = CheckpointEvidence(
            data.decode("utf-8"), checkpoint,
            _cosigners(data, settings.log_origin_name, verifier, settings),
            _tokens(fetcher, settings, checkpoint))
    except Exception as exc:  # noqa: BLE001 - a missing or corrupt log is "unavailable", never a 500
        log.warning("the log's checkpoint is unavailable: %s", exc)
        return None
    with _cache_lock:
        _cache[key] = (stamp, evidence)
    return evidence, verifier


def entry_evidence(settings: Settings, index: int) -> Evidence | None:
    """Entry ``index`` with its inclusion proof under the current checkpoint (the proof checked
    here too); None when the log, or this entry's place in it, is unavailable."""
    opened = checkpoint_evidence(settings)
    if opened is None:
        return None
    current, verifier = opened
    try:
        client = LogClient(DirectoryFetcher(settings.log_path), settings.log_origin_name, verifier)
        inclusion = client.prove_inclusion(current.checkpoint, index)
        entry = inclusion.entry.decode("utf-8")
    except Exception as exc:  # noqa: BLE001 - a missing or corrupt tile is "unavailable"
        log.warning("entry %d of the log is unavailable: %s", index, exc)
        return None
    return Evidence(index, entry, merkle.leaf_hash(inclusion.entry).hex(),
                    tuple(h.hex() for h in inclusion.proof), current.checkpoint.size,
                    current.checkpoint.root_hash.hex(), current)


@dataclass(frozen=True)
class LogEntry:
    """Where a capture or decision stands in the public log, and the command that checks it offline."""

    index: int
    origin: str
    url: str
    verifier_key: str
    witnesses: tuple[str, ...] = ()  # the witnesses' cosignature keys (SAMIZDAT_WITNESSES)
    quorum: int = 0
    time_stamped: bool = False  # SAMIZDAT_TSA_URLS is set: the command checks the tokens too
    evidence: Evidence | None = None  # None: the proof is unavailable right now
    with_proof: bool = True  # False: the page shows no proof (the static copy; see log_entry)

    @property
    def options(self) -> str:
        """The verifier's options for this log: where, its key, its witness policy and the TSAs'
        roots (which the reader must get from the TSAs themselves: ROOTS.pem)."""
        policy = "".join(f" --witness {vkey}" for vkey in self.witnesses)
        if self.witnesses:
            policy += f" --quorum {self.quorum}"
        if self.time_stamped:
            policy += " --tsa-root ROOTS.pem"
        return f"--log {self.url} --key {self.verifier_key}{policy}"

    @property
    def command(self) -> str:
        """The standalone verifier's command line for a folder of this capture's files."""
        return f"python -m provenance.verify FOLDER {self.options}"

    def token_url(self, token: Token) -> str:
        """Where a time-stamp token of the checkpoint is published, beside this log."""
        return f"{self.url}/{token.path}"

    def fragment_command(self, fragment_id: str, archive: str) -> str:
        """The standalone verifier's command line for a fragment served by ``archive``."""
        return f"python -m provenance.verify --fragment {fragment_id} --archive {archive} {self.options}"


def log_entry(settings: Settings, index: int, url: str, with_proof: bool = True) -> LogEntry:
    """Entry ``index`` of the published log at ``url`` as reader pages show it, with its proof
    (when ``with_proof`` and available)."""
    # The public key published beside the checkpoint: a web node never reads the log's private key.
    vkey = published_verifier_key(settings.log_path) or "VERIFIER_KEY"
    return LogEntry(index, settings.log_origin_name, url, vkey,
                    tuple(vkey for vkey, _ in settings.witness_list), settings.witness_quorum_count,
                    bool(settings.tsa_url_list),
                    entry_evidence(settings, index) if with_proof else None, with_proof)
