"""The command line's arguments, each defined once."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from whyrec.data import LoadOptions
from whyrec.errors import WhyrecError
from whyrec.training.controls import RankingControls

DEMO_RUN = Path("runs") / "demo"


def add_dataset_options(parser: argparse.ArgumentParser, dataset_help: str | None = None) -> None:
    """--dataset and the options of loading and encoding it; ``dataset_help`` makes it optional."""
    parser.add_argument(
        "--dataset",
        required=dataset_help is None,
        help=dataset_help or "KIND:PATH (movielens, amazon, movietweetings, csv, parquet) or demo",
    )
    parser.add_argument(
        "--items", help="csv/parquet kinds: item catalogue file (item_id, title, more text columns)"
    )
    parser.add_argument("--user-col", default="user_id")
    parser.add_argument("--item-col", default="item_id")
    parser.add_argument("--time-col", default="timestamp")
    parser.add_argument("--rating-col", default="rating")
    parser.add_argument(
        "--sep", default=None, help="csv kind: delimiter of the interactions file (default: sniffed)"
    )
    parser.add_argument(
        "--items-sep", default=None, help="delimiter of the --items file (default: sniffed from that file)"
    )
    parser.add_argument("--k-core", type=int, default=None, help="keep users and items with at least K rows")
    parser.add_argument(
        "--encoder",
        default=None,
        help="text encoder: minilm (default, bundled), hashing, or a sentence-transformers path",
    )
    parser.add_argument(
        "--adapt-encoder",
        action="store_true",
        help="adapt the text encoder to the training split's behaviour first (a linear adapter over "
        "the frozen model, chosen on validation; cached; saved in the run)",
    )


def _delimiter(text: str | None) -> str | None:
    """A delimiter as typed on a command line: 'tab' or a backslash-t mean a tab."""
    return "\t" if text in ("\\t", "tab") else text


def load_options(args: argparse.Namespace) -> LoadOptions:
    """The dataset options of ADD_DATASET_OPTIONS as the loader takes them."""
    return LoadOptions(
        items=args.items,
        user_col=args.user_col,
        item_col=args.item_col,
        time_col=args.time_col,
        rating_col=args.rating_col,
        sep=_delimiter(args.sep),
        items_sep=_delimiter(args.items_sep),
        k_core=args.k_core,
    )


def add_settings_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--set",
        metavar="KEY=VALUE",
        action="append",
        default=[],
        help="change a setting (a config field) of every chosen model that has it, "
        "e.g. --set max_epochs=30; repeatable",
    )


def add_process_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--nproc",
        type=int,
        default=1,
        help="train sequence models on N processes (torch DistributedDataParallel; batch_size is "
        "the batch of all N together)",
    )
    parser.add_argument(
        "--device", choices=["cpu", "cuda"], default="cpu", help="where sequence models train (default cpu)"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="whyrec", description="A sequential recommender that explains itself."
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars or reports")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="train on the bundled MovieTweetings data and serve the web UI")
    demo.add_argument("--no-serve", action="store_true", help="print explained recommendations instead")
    demo.add_argument("--model", default="sasrec")
    demo.add_argument("--out", type=Path, default=DEMO_RUN)
    demo.add_argument("--retrain", action="store_true", help="train again even if the demo run exists")
    demo.add_argument("--users", type=int, default=3, help="--no-serve: how many users to show")
    demo.add_argument("-k", type=int, default=5)
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--port", type=int, default=8000)
    demo.add_argument(
        "--db", default=None, help="event store URL (default: SQLite file in the run directory)"
    )
    add_access_options(demo)

    train = sub.add_parser("train", help="train one model and save a run directory")
    add_dataset_options(train, dataset_help="KIND:PATH; with --run, defaults to the run's dataset")
    train.add_argument("--model", default=None, help="default: sasrec; with --run: the run's model")
    train.add_argument("--out", type=Path, help="the new run directory")
    train.add_argument("--overwrite", action="store_true", help="replace an existing run directory")
    train.add_argument("--tensorboard", metavar="DIR", help="log loss and validation metrics to TensorBoard")
    add_settings_option(train)
    train.add_argument(
        "--run", type=Path, help="retrain this run (with --with-feedback: fold in its stored events)"
    )
    train.add_argument("--with-feedback", action="store_true", help="add the events stored by `whyrec serve`")
    train.add_argument("--db", default=None, help="event store URL (default: the run's SQLite file)")
    add_process_options(train)

    evaluate = sub.add_parser("evaluate", help="train and test several models on the same split")
    add_dataset_options(evaluate)
    evaluate.add_argument("--models", default="pop,itemknn,content,sasrec,hybrid")
    evaluate.add_argument("--json", type=Path, help="write the metrics JSON here")
    evaluate.add_argument("--explanations", action="store_true", help="also measure explanation quality")
    evaluate.add_argument("--explain-users", type=int, default=200, help="users sampled for --explanations")
    evaluate.add_argument(
        "--lang", choices=["en", "zh"], default="en", help="language of the measured sentences"
    )
    evaluate.add_argument(
        "--llm",
        nargs="?",
        const="smollm",
        default=None,
        help="phrase the sentences of the first 50 explained users with an LLM (smollm or a base URL)",
    )
    evaluate.add_argument("--tensorboard", metavar="DIR")
    evaluate.add_argument(
        "--controls",
        metavar="SETTINGS",
        help="also measure each model's top 10 under ranking controls: settings separated by ';', "
        "knobs of one setting by ',', e.g. 'none;diversity=0.3;calibrate;max_per_attribute=3' "
        "(diversity, NDCG@10 against the plain ranking, coverage, popularity, calibration)",
    )
    add_process_options(evaluate)
    add_settings_option(evaluate)

    recommend = sub.add_parser("recommend", help="top-K for one user of a run")
    recommend.add_argument("--run", type=Path, required=True)
    recommend.add_argument("--user", required=True)
    recommend.add_argument("-k", type=int, default=10)
    recommend.add_argument("--explain", action="store_true", help="add a short explanation to every row")
    recommend.add_argument("--json", action="store_true")
    recommend.add_argument("--lang", choices=["en", "zh"], default="en")
    add_control_options(recommend, "for this list")

    explain = sub.add_parser("explain", help="the full explanation of one (user, item) pair")
    explain.add_argument("--run", type=Path, required=True)
    explain.add_argument("--user", required=True)
    explain.add_argument("--item", required=True)
    explain.add_argument("-k", type=int, default=10)
    explain.add_argument("--json", action="store_true")
    explain.add_argument("--lang", choices=["en", "zh"], default="en")
    explain.add_argument(
        "--llm",
        nargs="?",
        const="smollm",
        default=None,
        help="rephrase with an LLM: smollm (default) or an OpenAI-compatible base URL",
    )

    serve = sub.add_parser("serve", help="the HTTP API and web UI for a run")
    serve.add_argument("--run", type=Path, required=True)
    serve.add_argument(
        "--db", default=None, help="SQLAlchemy URL (default: sqlite file events.db in the run)"
    )
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--llm", default=None, help="smollm or an OpenAI-compatible base URL")
    add_access_options(serve)
    serve.add_argument("--workers", type=int, default=1, help="server processes sharing the event store")
    per = "per credential (default %s; 0: no limit)"
    serve.add_argument("--events-per-minute", type=int, default=None, help="event posts " + per % 120)
    serve.add_argument("--asks-per-minute", type=int, default=None, help="questions " + per % 30)
    serve.add_argument(
        "--user-event-cap", type=int, default=None, help="events one user may store per hour (default 1000)"
    )
    add_control_options(serve, "the service's defaults; a request may add blocks and change the knobs")
    return parser


def add_control_options(parser: argparse.ArgumentParser, what: str) -> None:
    """The ranking controls (see docs/ranking-controls.md), read by :func:`ranking_controls`."""
    group = parser.add_argument_group("ranking controls", what)
    names = "a file with one per line (# comments), or a comma-separated list; repeatable"
    group.add_argument(
        "--block-items", metavar="FILE_OR_LIST", action="append", default=[],
        help="item ids never recommended: " + names,
    )  # fmt: skip
    group.add_argument(
        "--block-attributes", metavar="FILE_OR_LIST", action="append", default=[],
        help="attributes (genres, categories) whose items are never recommended: " + names,
    )  # fmt: skip
    group.add_argument(
        "--diversity", metavar="0..1", default=None,
        help="0: the plain ranking (default); up to 1: as varied as possible (MMR)",
    )  # fmt: skip
    group.add_argument(
        "--calibrate", action="store_true", help="match the attribute mix of each user's history (Steck 2018)"
    )
    group.add_argument(
        "--max-per-attribute", metavar="N", default=None,
        help="at most N items per attribute in a list (default: no cap)",
    )  # fmt: skip


def ranking_controls(args: argparse.Namespace) -> RankingControls:
    """The ranking controls of ADD_CONTROL_OPTIONS; a bad value is a WhyrecError naming it."""
    diversity = _number("--diversity", args.diversity, float)
    cap = _number("--max-per-attribute", args.max_per_attribute, int)
    try:
        return RankingControls(
            block_items=tuple(_names(args.block_items, "--block-items")),
            block_attributes=tuple(_names(args.block_attributes, "--block-attributes")),
            diversity=0.0 if diversity is None else diversity,
            calibrate=args.calibrate,
            max_per_attribute=int(cap) if cap else None,
        )
    except ValueError as error:  # "diversity must be at most 1, ..." names the option's field
        field, rest = str(error).split(" ", 1)
        raise WhyrecError(f"--{field.replace('_', '-')} {rest}") from None


def _number(option: str, text: str | None, kind: type[float] | type[int]) -> float | None:
    if text is None:
        return None
    try:
        return kind(text)
    except ValueError:
        word = "a whole number" if kind is int else "a number"
        raise WhyrecError(f"{option} must be {word}, not {text!r}") from None


def _names(values: list[str], option: str) -> list[str]:
    """Names from each value: an existing file (one per line) or a comma-separated list."""
    names: list[str] = []
    for value in values:
        path = Path(value)
        if os.path.isfile(value):  # never raises (a long list is "File name too long" to Path)
            try:
                lines = path.read_text(encoding="utf-8").splitlines()
            except (OSError, UnicodeDecodeError) as exc:
                raise WhyrecError(f"cannot read {option} file {value}: {exc}") from None
            names += [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
        elif os.sep in value or path.suffix in (".txt", ".csv", ".lst"):
            raise WhyrecError(f"{option}: no such file {value}")
        else:
            names += [n.strip() for n in value.split(",") if n.strip()]
    return list(dict.fromkeys(names))


def add_access_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--api-key-file",
        type=Path,
        default=None,
        help="file holding the service key (default: $WHYREC_API_KEY; without a key the service is open "
        "and only allowed on a loopback host)",
    )
    parser.add_argument(
        "--cors-origin",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="allow browser calls from this origin, e.g. https://app.example.org (repeatable; none by "
        "default)",
    )


def serve_limits(args: argparse.Namespace) -> dict[str, int]:
    """The limit options given on the command line, as ServiceSettings fields."""
    names = ("events_per_minute", "asks_per_minute", "user_event_cap")
    return {name: getattr(args, name) for name in names if getattr(args, name, None) is not None}
