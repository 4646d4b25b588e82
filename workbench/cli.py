"""The ``workbench`` command: thin wrappers that forward options to the library.

Every subcommand prints a readable summary, or with ``--json`` one JSON document on stdout;
progress bars go to stderr. Bad input ends with a one-line message and exit status 2, never a
traceback (set WORKBENCH_DEBUG=1 to see one).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from workbench.errors import WorkbenchError

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130


def _workspace(args):
    from workbench.workspace import Workspace

    return Workspace.at(args.workspace)


def _emit(args, summary: dict, text: str) -> None:
    if args.json:
        print(json.dumps(summary, ensure_ascii=False, indent=2, default=str))
    else:
        print(text)


# --------------------------------------------------------------------------- prepare


def cmd_prepare(args) -> None:
    from data_recipes import prepare_sources, source_path
    from data_recipes.options import ImportOptions

    ws = _workspace(args)
    if args.untranscribed:
        return _add_untranscribed(args, ws)
    sources = [source_path(s) for s in args.source]
    options = ImportOptions.from_args(args).reader_options()
    if args.add:
        return _add_sources(args, ws, sources, options)
    settings = {"seed": args.seed, "sources": [{"path": str(s), "format": args.format or "auto"}
                                               for s in sources]}
    result = prepare_sources(sources, ws, fmt=args.format, seed=args.seed,
                             progress=not args.quiet, settings=settings, **options)
    summary = {"workspace": str(ws.root), "sources": [str(s) for s in sources],
               **result.summary()}
    _emit(args, summary, _prepare_text(summary))


def _add_sources(args, ws, sources: list[Path], options: dict) -> None:
    """``prepare --add SPLIT``: the sources' utterances added to the prepared data."""
    from data_recipes import read_source
    from data_recipes.adding import add_source

    reads = [read_source(source, args.format, workspace=ws, **options) for source in sources]
    recorded = [*ws.read_settings().get("sources", []),
                *({"path": str(s), "format": args.format or "auto", "added_to": args.add}
                  for s in sources)]
    result = add_source(reads, ws, split=args.add, progress=not args.quiet,
                        settings={"sources": recorded})
    summary = {"workspace": str(ws.root), "sources": [str(s) for s in sources],
               **result.summary()}
    _emit(args, summary, _prepare_text(summary).replace("Imported", "Added", 1))


def _add_untranscribed(args, ws) -> None:
    """``prepare --untranscribed``: recordings without transcripts, cut and audited."""
    from data_recipes.untranscribed import import_untranscribed

    result = import_untranscribed([Path(s) for s in args.source], ws, progress=not args.quiet)
    summary = {"workspace": str(ws.root), **result.summary()}
    _emit(args, summary, _untranscribed_text(summary))


def _untranscribed_text(summary: dict) -> str:
    lines = [f"Added {summary['pieces']} untranscribed pieces ({summary['seconds'] / 60:.1f} "
             f"min) from {summary['files']} files into {summary['workspace']}",
             f"  untranscribed {summary['untranscribed_seconds'] / 60:7.1f} min in all, "
             f"transcribed {summary['transcribed_seconds'] / 60:7.1f} min"]
    for check, count in summary["set_aside_by_check"].items():
        lines.append(f"  set aside: {count} {check}")
    lines += [f"    {item['item']}: {item['check']}: {item['detail']}"
              for item in summary["set_aside"][:20]]
    if len(summary["set_aside"]) > 20:
        lines.append(f"    ... and {len(summary['set_aside']) - 20} more (--json lists all)")
    return "\n".join(lines)


def _prepare_text(summary: dict) -> str:
    lines = [f"Imported {summary['utterances']} utterances "
             f"({summary['seconds'] / 60:.1f} min, {summary['speakers']} speakers) "
             f"into {summary['workspace']}"]
    for split, info in summary["splits"].items():
        lines.append(f"  {split:5s} {info['utterances']:6d} utterances "
                     f"{info['seconds'] / 60:7.1f} min")
    for issue in summary["issues"]:
        lines.append(f"  set aside: {issue['item']}: {issue['check']}: {issue['detail']}")
    lines += [f"  warning: {w}" for w in summary["warnings"]]
    lines.append("Next: `workbench audit -w WS`, then `workbench vocab -w WS`.")
    return "\n".join(lines)


# --------------------------------------------------------------------------- audit, vocab


def cmd_audit(args) -> None:
    from workbench.audit import AuditOptions, format_audit, run_audit

    ws = _workspace(args)
    ws.require_prepared()
    report = run_audit(ws, options=AuditOptions(max_duration=args.max_seconds))
    _emit(args, report.to_dict(), format_audit(report))


def cmd_vocab(args) -> None:
    from workbench.vocab import build_workspace_vocab, format_vocab_report

    ws = _workspace(args)
    report = build_workspace_vocab(ws, Path(args.profile) if args.profile else None)
    _emit(args, report.to_dict(), format_vocab_report(report))


# --------------------------------------------------------------------------- train


def cmd_train(args) -> None:
    from workbench import config as cfg
    from workbench.train import resume_run, train

    if args.help_config:
        print(cfg.settings_help())
        return
    ws = _workspace(args)
    ws.require_prepared()
    overrides = list(args.overrides)
    if args.max_steps:
        overrides.append(f"optim.max_steps={args.max_steps}")
    for flag, key in (("mode", "model.mode"), ("top_layers", "model.top_layers"),
                      ("finish_epochs", "model.finish_epochs"),
                      ("adapter_lang", "model.adapter_lang")):
        if getattr(args, flag) not in (None, ""):
            overrides.append(f"{key}={getattr(args, flag)}")
    options = {"max_minutes": args.max_minutes, "progress": not args.quiet}
    if args.resume:
        result = resume_run(ws, args.run, overrides=cfg.parse_overrides(overrides), **options)
    else:
        minutes = sum(u.duration for u in ws.read_split("train")) / 60
        if args.model:
            overrides.insert(0, f"model.name={args.model}")
        config = cfg.build_config(preset=args.preset, train_minutes=minutes,
                                  overrides=overrides)
        if args.estimate:
            return _print_estimate(args, ws, config)
        if int(os.environ.get("RANK", "0")) == 0:
            _estimate_line(ws, config)
        result = train(ws, config, **options)
    summary = result.to_dict()
    if int(os.environ.get("RANK", "0")) == 0:  # one summary under torchrun / accelerate launch
        _emit(args, summary, _train_text(summary))


def _print_estimate(args, ws, config) -> None:
    """``train --estimate``: measure here (or read the cache), print every mode, exit."""
    from dataclasses import asdict

    from workbench import estimate

    plan = estimate.plan(ws, config, measure_missing=True)
    summary = {"chosen": plan.chosen, "suggested": plan.suggested,
               "estimates": [{**asdict(e), "fits_hour": e.fits_hour} for e in plan.estimates]}
    lines = [estimate.describe(e) + ("" if e.fits_hour else "  (more than an hour)")
             for e in plan.estimates]
    _emit(args, summary, "\n".join([*lines, estimate.summary_line(plan)]))


def _estimate_line(ws, config) -> None:
    """One line on stderr before training: from a cached measurement, else from the model
    size (never a measurement: that is ``--estimate``)."""
    from workbench import estimate

    try:
        print(estimate.summary_line(estimate.plan(ws, config, measure_missing=False)),
              file=sys.stderr)
    except (WorkbenchError, OSError, ValueError):
        pass  # an estimate is advice; training itself reports what is wrong


def _train_text(summary: dict) -> str:
    cer = summary["best_dev_cer"]
    wer = summary["best_dev_wer"]
    scores = (f"best dev CER {cer:.3f}, WER {wer:.3f} at step {summary['best_step']}"
              if cer is not None else "no dev split to score")
    return (f"Trained {summary['steps']} steps in {summary['elapsed_s'] / 60:.1f} min "
            f"({summary['stopped']}); {scores}.\nRun: {summary['run_dir']}\n"
            f"Model (Hugging Face format): {summary['run_dir']}/model\n"
            "Next: `workbench evaluate -w WS`.")


# --------------------------------------------------------------------------- evaluate, transcribe


def cmd_evaluate(args) -> None:
    from workbench.evaluate import evaluate_run, format_report

    ws = _workspace(args)
    report = evaluate_run(ws, args.run, args.split, include_excluded=args.include_excluded,
                          progress=not args.quiet, lm=args.lm)
    _emit(args, report.to_dict(), format_report(report))


def cmd_pretrain(args) -> None:
    from workbench.pretrain import PretrainSettings, pretrain

    ws = _workspace(args)
    settings = PretrainSettings.from_pairs(args.settings, model=args.model, steps=args.steps)
    result = pretrain(ws, settings, resume=args.resume, max_minutes=args.max_minutes or 0.0,
                      progress=not args.quiet)
    summary = result.to_dict()
    fresh = (f"\n  started fresh (not in the checkpoint): {', '.join(result.fresh)}"
             if result.fresh else "")
    _emit(args, summary, f"Pretrained {result.steps} steps ({result.stopped}) in "
          f"{result.run_dir}{fresh}\n  base model: {result.base_dir}\n"
          f"Next: `workbench train -w WS --model {result.base_dir}`.")


def cmd_pseudolabel(args) -> None:
    from workbench.pseudolabel import pseudolabel

    ws = _workspace(args)
    result = pseudolabel(ws, args.run, lm=args.lm, threshold=args.threshold, name=args.name,
                         progress=not args.quiet)
    summary = result.summary()
    _emit(args, summary, _pseudolabel_text(summary))


def _pseudolabel_text(summary: dict) -> str:
    t = summary["threshold"]
    chosen = (f"chosen on dev: {t['dev_kept']} of {t['dev_total']} dev utterances at or "
              f"above it, CER {t['dev_cer_kept']:.3f} against {t['dev_cer']:.3f} for all"
              + ("" if t["met"] else "; no level halves the dev CER, this one is the "
                 "lowest") if t["dev_total"] else "given")
    return (f"Pseudo-labelled {summary['kept']} of {summary['total']} untranscribed pieces "
            f"({summary['kept_seconds'] / 60:.1f} of {summary['total_seconds'] / 60:.1f} min) "
            f"with {summary['run']}{' and the LM ' + summary['lm'] if summary['lm'] else ''}\n"
            f"  confidence threshold {t['value']:.3f} ({chosen})\n"
            f"  written to {summary['folder']}\n"
            f"Next: `workbench train -w WS data.pseudolabels={summary['name']} "
            "data.pseudo_weight=0.5`, then evaluate the run on the same dev and test.")


def cmd_transcribe(args) -> None:
    from workbench.transcribe import transcribe_files

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    model = _with_lm(args, _resolve_model_arg(args))
    if args.output or args.into:
        return _transcribe_timed(args, model)
    results = transcribe_files([Path(p) for p in args.audio], model, progress=not args.quiet,
                               batch_seconds=args.batch_seconds)
    summary = [r.to_dict() if hasattr(r, "to_dict") else vars(r) for r in results]
    lines = [f"{r.path}: {r.text}" if not r.error else f"{r.path}: ERROR {r.error}"
             for r in results]
    _emit(args, {"results": summary}, "\n".join(lines))
    if results and all(r.error for r in results):
        raise WorkbenchError("No file could be transcribed.")


def _with_lm(args, model: Path) -> Any:
    """The model, or a recognizer decoding with ``--lm`` (or the LM bundled with the model,
    unless ``--greedy``)."""
    from workbench.lm.store import bundled_lm

    lm = args.lm or (None if args.greedy else bundled_lm(Path(model)))
    if not lm:
        return model
    from workbench.evaluate import attach_lm
    from workbench.recognizer import load_recognizer

    recognizer, how = attach_lm(load_recognizer(model), _workspace(args), lm)
    if not args.quiet:
        print(f"Decoding with {how}", file=sys.stderr)
    return recognizer


def _transcribe_timed(args, model: Any) -> None:
    """``transcribe --output FORMAT``: utterances and words with times, one file each
    (greedy, or with the language model: words timed on the LM's own best path)."""
    from tqdm.auto import tqdm

    from workbench.recognizer import load_recognizer
    from workbench.segments import segment_file

    into = _into_target(args, Path(args.audio[0]) if len(args.audio) == 1 else None)
    out_dir = Path(args.out_dir).expanduser() if args.out_dir else None
    recognizer = model if not isinstance(model, Path) else load_recognizer(model)
    name = _run_name(model if isinstance(model, Path) else recognizer.model_dir or Path())
    results, failed = [], 0
    for audio in tqdm([Path(a) for a in args.audio], desc="Transcribing", unit="file",
                      disable=args.quiet):
        try:
            _refuse_existing_output(audio, args.output, out_dir, args.force, into=into,
                                    run=name)  # before the work
            timed = segment_file(recognizer, audio, model_name=name,
                                 segmenter=args.segmenter)
            path = _write_timed(timed, args.output, out_dir, args.force, into=into)
            results.append({"audio": str(audio), "output": str(path),
                            "utterances": len(timed.segments), "seconds": timed.duration})
        except WorkbenchError as err:
            failed += 1
            results.append({"audio": str(audio), "error": str(err)})
    lines = [f"{r['audio']}: ERROR {r['error']}" if "error" in r else
             f"{r['audio']}: {r['utterances']} utterances -> {r['output']}" for r in results]
    _emit(args, {"results": results}, "\n".join(lines))
    if failed == len(results):
        raise WorkbenchError("No file could be transcribed.")


def cmd_align(args) -> None:
    from workbench.align import align_file, read_transcript
    from workbench.recognizer import load_recognizer
    from workbench.text import load_profile

    model = _resolve_model_arg(args)
    audio = Path(args.audio)
    lines = read_transcript(Path(args.transcript), args.tier)
    if args.into is None and args.output is None and Path(args.transcript).suffix.lower() \
            == ".eaf":
        args.into = args.transcript  # the ELAN file's own tiers, with the aligned ones added
    args.output = args.output or ("textgrid" if args.into is None else None)
    into = _into_target(args, audio)
    out_dir = Path(args.out_dir).expanduser() if args.out_dir else None
    _refuse_existing_output(audio, args.output, out_dir, args.force, into=into,
                            run=_run_name(model))  # before the work
    ws = _workspace(args)
    profile = load_profile(ws.profile_path if ws.profile_path.is_file() else None)
    timed, aligned = align_file(load_recognizer(model), audio, lines, profile,
                                model_name=_run_name(model),
                                min_confidence=args.min_confidence)
    flagged = [(a.guess, a.flag) for a in aligned if a.flag and a.guess]
    path = _write_timed(timed, args.output, out_dir, args.force, into=into, flagged=flagged,
                        keep_flagged=args.keep_flagged)
    done = sum(1 for a in aligned if not a.flag)
    summary = {"output": str(path), "lines": len(lines), "aligned": done,
               "flagged": [{"line": a.line, "where": a.where, "text": a.text,
                            "confidence": a.confidence} for a in aligned if a.flag],
               "notes": timed.notes}
    text = "\n".join([f"Aligned {done} of {len(lines)} lines -> {path}", *timed.notes])
    if flagged and args.output == "audiofolder":
        text += (f"\n{len(flagged)} flagged lines " + ("kept, marked in the flag column" if
                 args.keep_flagged else "left out (--keep-flagged keeps them, marked)"))
    _emit(args, summary, text)


def _into_target(args, audio: Path | None) -> Path | None:
    """The user's ELAN file or TextGrid that ``--into`` names (checked now, before the
    work), or None; ``args.output`` is set to its format (or must agree with it)."""
    from workbench.writers_into import check_into, into_format

    if not args.into:
        return None
    into = Path(args.into).expanduser()
    if audio is None:
        raise WorkbenchError("--into adds tiers for one recording; give one audio file.")
    fmt = into_format(into)
    if args.output and args.output.lower() != fmt:
        raise WorkbenchError(f"--into {into.name} is a{'n ELAN' if fmt == 'eaf' else ' Praat'} "
                             f"file but --output says {args.output}; drop --output.")
    args.output = fmt
    check_into(into)
    return into


def _refuse_existing_output(audio: Path, fmt: str, out_dir: Path | None, force: bool, *,
                            into: Path | None = None, run: str = "") -> None:
    from workbench.audiofolder import audiofolder_path
    from workbench.writers import get_writer, output_path, refuse_existing
    from workbench.writers_into import into_path

    if into is not None:
        refuse_existing(into_path(into, run, out_dir), force)
    elif fmt == "audiofolder":
        refuse_existing(audiofolder_path(audio, out_dir), force)
    else:
        refuse_existing(output_path(audio, get_writer(fmt), out_dir), force)


def _write_timed(timed: Any, fmt: str, out_dir: Path | None, force: bool, *,
                 into: Path | None = None, flagged: list = (),
                 keep_flagged: bool = False) -> Path:
    """Write a timed transcript: into the user's ELAN file or TextGrid (a copy with the
    tiers added), in a file format of the writers' registry, or as an ``audiofolder``
    (clips and a table that ``workbench prepare`` imports)."""
    from workbench.audiofolder import write_audiofolder
    from workbench.writers import write_transcript
    from workbench.writers_into import write_into

    if into is not None:
        return write_into(timed, into, out_dir, force=force)
    if fmt == "audiofolder":
        return write_audiofolder(timed, out_dir, force=force, flagged=list(flagged),
                                 keep_flagged=keep_flagged)
    return write_transcript(timed, fmt, out_dir, force=force)


def _run_name(model: Path) -> str:
    """What timed outputs name their tiers after: the run of a run's ``model/`` folder."""
    return Path(model).parent.name if Path(model).name == "model" else Path(model).name


def _resolve_model_arg(args) -> Path:
    """--model is a model or run directory, or a run id in the workspace (-w)."""
    candidate = Path(args.model).expanduser() if args.model else None
    if candidate is not None and (candidate.is_dir() or candidate.is_file()):
        return candidate
    from workbench.run import find_run

    return find_run(_workspace(args), args.model, with_model=True).root


# --------------------------------------------------------------------------- lm


def cmd_lm_build(args) -> None:
    from workbench.lm.store import build_lm, format_build

    ws = _workspace(args)
    ws.require_prepared()
    result = build_lm(ws, [Path(t).expanduser() for t in args.text], name=args.name,
                      order=args.order, unit=args.unit, transcripts=args.transcripts,
                      allow_leakage=args.allow_leakage, max_words=args.max_words)
    _emit(args, {"folder": str(result.folder), **result.info},
          format_build(result.info, result.folder))


def cmd_lm_tune(args) -> None:
    from workbench.lm.tune import format_tuning, tune_lm

    ws = _workspace(args)
    result = tune_lm(ws, args.lm, run=args.run, progress=not args.quiet, beam=args.beam)
    _emit(args, result, format_tuning(result))


# --------------------------------------------------------------------------- export


def cmd_export(args) -> None:
    from workbench.onnx_export import export_onnx

    if not args.onnx:
        raise WorkbenchError(
            "Say which format to export to: `workbench export RUN --onnx [--int8]` (ONNX is "
            "the one offered; the run's model/ folder is already in Hugging Face format).")
    model = _resolve_model_arg(args)
    lm = None
    if args.lm:
        from workbench.lm.store import find_lm

        lm = find_lm(_workspace(args), args.lm)
    result = export_onnx(model, args.out, int8=args.int8, lm=lm, language=args.language)
    summary = result.to_dict()
    _emit(args, summary, _export_text(summary))


def _export_text(summary: dict) -> str:
    if summary["int8"]:
        check = (f"int8 weights; best token agrees with fp32 on "
                 f"{100 * summary['greedy_agreement']:.1f}% of check frames")
    else:
        check = f"fp32; logits match torch within {summary['max_logit_diff']:.1e}"
    return (f"Exported {summary['source']} to {summary['out_dir']} "
            f"({summary['size_mb']:.1f} MB, {check}, {summary['seconds']:.0f} s).\n"
            f"Transcribe with ONNX Runtime: workbench transcribe FILE --model "
            f"{summary['out_dir']}")


# --------------------------------------------------------------------------- demo


def cmd_demo(args) -> None:
    from workbench.demo import run_demo

    summary = run_demo(Path(args.workspace), max_steps=args.max_steps,
                       max_minutes=args.max_minutes, progress=not args.quiet)
    _emit(args, summary, summary["text"])


def cmd_models(args) -> None:
    from workbench.models import REGISTRY

    rows = {name: {"hub_id": m.hub_id, "description": m.description}
            for name, m in REGISTRY.items()}
    text = "\n".join(f"{name:20s} {m['hub_id'] or '(local)':36s} {m['description']}"
                     for name, m in rows.items())
    _emit(args, rows, text)


def cmd_ui(args) -> None:
    from ui.app import ServeOptions, parse_auth, parse_auth_file, serve
    from ui.workspaces import WorkspaceRoot

    accounts = [parse_auth(text) for text in args.auth or []]
    if args.auth_file:
        accounts += parse_auth_file(args.auth_file)
    root = WorkspaceRoot.create(args.root, args.workspace, args.models_dir)
    options = ServeOptions(host=args.host, port=args.port, share=args.share,
                           auth=accounts or None, max_file_size=args.max_file_size,
                           allowed_hosts=tuple(args.allow_host or ()))
    serve(root, options)


# --------------------------------------------------------------------------- parser


def _common(parser: argparse.ArgumentParser, workspace: bool = True) -> None:
    if workspace:
        parser.add_argument("-w", "--workspace", required=True,
                            help="the workspace folder of this language project")
    parser.add_argument("--json", action="store_true",
                        help="print a machine-readable JSON summary on stdout")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="workbench",
        description="Turn a little transcribed speech into a speech recogniser for your "
                    "language: prepare -> audit -> vocab -> train -> evaluate -> transcribe.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands: list[tuple[str, Callable, str]] = [
        ("prepare", cmd_prepare, "import transcribed audio into a workspace"),
        ("audit", cmd_audit, "check the data and report what is set aside and why"),
        ("vocab", cmd_vocab, "normalise text and build the character vocabulary"),
        ("train", cmd_train, "fine-tune a CTC model on the workspace"),
        ("evaluate", cmd_evaluate, "WER/CER of a trained run on a split"),
        ("transcribe", cmd_transcribe, "transcribe audio files with a trained model"),
        ("pretrain", cmd_pretrain, "continue wav2vec 2.0 self-supervised pretraining on the "
                                   "untranscribed audio; writes a base model for train"),
        ("pseudolabel", cmd_pseudolabel, "transcribe the untranscribed audio with a run and "
                                         "keep the confident pieces as training data"),
        ("align", cmd_align, "time a plain-text transcript (one utterance a line) against a "
                             "long recording"),
        ("lm", None, "build and tune n-gram language models from text (`lm build`, "
                     "`lm tune`)"),
        ("export", cmd_export, "export a trained model to ONNX (optionally int8) for fast "
                               "CPU inference"),
        ("demo", cmd_demo, "the whole flow offline on the bundled Quechua demo corpus"),
        ("models", cmd_models, "list the registered checkpoints"),
        ("ui", cmd_ui, "the whole flow in the browser (a local web page)"),
    ]
    parsers = {}
    for name, handler, help_text in commands:
        parsers[name] = sub.add_parser(name, help=help_text, description=help_text)
        if handler is not None:
            parsers[name].set_defaults(handler=handler)
    _prepare_args(parsers["prepare"])
    _common(parsers["audit"])
    parsers["audit"].add_argument("--max-seconds", type=float, default=20.0,
                                  help="clips longer than this are set aside (default 20)")
    _common(parsers["vocab"])
    parsers["vocab"].add_argument("--profile", help="orthography profile YAML to use")
    _train_args(parsers["train"])
    _pseudolabel_args(parsers["pseudolabel"])
    _pretrain_args(parsers["pretrain"])
    _common(parsers["evaluate"])
    parsers["evaluate"].add_argument("--run", help="run id (default: the latest run)")
    parsers["evaluate"].add_argument("--split", default="test", choices=["train", "dev", "test"])
    parsers["evaluate"].add_argument("--lm", help="decode with this language model of the "
                                     "workspace (its tuned alpha and beta); default: greedy")
    parsers["evaluate"].add_argument(
        "--include-excluded", action="store_true",
        help="also score the utterances the audit set aside (by default they are listed in "
             "the report with the reason, not scored)")
    _transcribe_args(parsers["transcribe"])
    _align_args(parsers["align"])
    _lm_args(parsers["lm"])
    _export_args(parsers["export"])
    _demo_args(parsers["demo"])
    _ui_args(parsers["ui"])
    _common(parsers["models"], workspace=False)
    return parser


def _prepare_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", nargs="+",
                   help="one or more sources: audiofolder (folder with metadata.csv), "
                   "CSV/TSV table, ELAN .eaf or Praat .TextGrid file or a folder of them, "
                   "Common Voice language folder, Kaldi data dir (wav.scp, text), a "
                   "Hugging Face dataset (a save_to_disk folder, or a Hub id user/name when "
                   "online), or a zip/tar archive of any of these (extracted into WS/sources/)")
    _common(p)
    from data_recipes import READERS
    from data_recipes.options import add_arguments

    # No argparse choices: an unknown name gets an error listing every registered format.
    p.add_argument("--format",
                   help=f"source format: {', '.join(READERS)} (detected when unambiguous; for "
                   "an archive, the format of what it holds)")
    add_arguments(p)  # one flag per field of data_recipes.options.ImportOptions
    p.add_argument("--seed", type=int, default=0, help="seed of the train/dev/test split")
    p.add_argument("--add", nargs="?", const="train", choices=["train", "dev", "test"],
                   help="add the sources to the prepared data instead of replacing it: every "
                   "new utterance goes to this split (default train), and the utterances "
                   "already there keep their ids and splits (e.g. `align --output "
                   "audiofolder` clips)")
    p.add_argument("--untranscribed", action="store_true",
                   help="the sources are recordings without transcripts (files, folders or "
                   "archives, any format): cut at pauses into 2-15 s pieces, audited for "
                   "silence, clipping and duplicates, and added to WS/untranscribed/ for "
                   "`workbench pretrain` and `workbench pseudolabel`")


def _pretrain_args(p: argparse.ArgumentParser) -> None:
    _common(p)
    p.add_argument("--model", help="the base to continue (default: "
                   "facebook/wav2vec2-xls-r-300m; demo-base, a folder, a Hub id)")
    p.add_argument("--steps", type=int, help="optimizer steps (default: 10 epochs)")
    p.add_argument("--resume", nargs="?", const="latest",
                   help="continue the latest pretraining run (or the one named)")
    p.add_argument("--max-minutes", type=float, help="stop after this long, checkpointed")
    p.add_argument("settings", nargs="*", metavar="key=value",
                   help="pretraining settings (learning_rate, mask_time_prob, "
                   "num_negatives, max_batch_seconds, checkpoint_every, ...)")


def _pseudolabel_args(p: argparse.ArgumentParser) -> None:
    _common(p)
    p.add_argument("--run", help="the run that transcribes (default: the latest)")
    p.add_argument("--lm", help="a language model of the workspace to decode with")
    p.add_argument("--threshold", type=float,
                   help="keep pieces at or above this confidence (default: chosen on dev)")
    p.add_argument("--name", help="name of the pseudo-label set (default: the run's, and "
                   "the LM's)")


def _train_args(p: argparse.ArgumentParser) -> None:
    _common(p)
    p.add_argument("--model", help="Hub id, local directory, registered name (see "
                   "`workbench models`) or 'tiny' (default: facebook/wav2vec2-xls-r-300m)")
    p.add_argument("--preset", default="auto", choices=["auto", "10min", "1h", "10h"],
                   help="settings sized for the amount of data (default: auto)")
    from workbench.config import MODES

    p.add_argument("--mode", choices=MODES, help="what trains: full (default), top (laptop "
                   "mode: lower layers cached, top layers trained) or adapter (MMS adapters)")
    p.add_argument("--top-layers", type=int, help="--mode top: how many top transformer "
                   "layers train")
    p.add_argument("--finish-epochs", type=float, help="--mode top: epochs of a full "
                   "fine-tune that finish the run from the top layers' result (0: none)")
    p.add_argument("--adapter-lang", help="--mode adapter: language code of the adapter")
    p.add_argument("--max-steps", type=int, default=0, help="exact number of training steps")
    p.add_argument("--max-minutes", type=float, default=0.0,
                   help="stop after this many minutes of training (0: no limit)")
    p.add_argument("--resume", action="store_true",
                   help="continue an interrupted run (the latest, or --run)")
    p.add_argument("--run", help="run id to resume")
    p.add_argument("--help-config", action="store_true",
                   help="list every key=value setting with its default and meaning")
    p.add_argument("--estimate", action="store_true",
                   help="measure a few training steps here (cached per model and machine), "
                        "print each mode's expected duration and peak memory, and exit")
    p.add_argument("overrides", nargs="*", metavar="key=value",
                   help="settings, e.g. optim.learning_rate=3e-4 data.max_batch_seconds=60")


def _transcribe_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("audio", nargs="+", help="audio files (any format)")
    p.add_argument("--model", required=True,
                   help="model directory, run directory, or run id in the workspace (-w)")
    p.add_argument("-w", "--workspace", default=".", help="workspace holding the run")
    p.add_argument("--lm", help="decode with this language model (a name in the workspace, "
                   "or an LM folder); default: the model folder's own lm/, else greedy")
    p.add_argument("--greedy", action="store_true",
                   help="greedy decoding even when the model folder carries a language model")
    p.add_argument("--batch-seconds", type=float, default=20.0,
                   help="most padded audio per forward pass (default 20)")
    p.add_argument("--threads", type=int, default=0,
                   help="CPU threads (0: torch's default; ONNX Runtime uses as many)")
    p.add_argument("--output", metavar="FORMAT",
                   help="write each recording's utterances with times (cut at pauses, 1-20 s) "
                   "and word times as FORMAT: txt, json, tsv, srt, vtt, textgrid or eaf "
                   "(with --lm, the words are the LM's, timed on its own best path)")
    from workbench.segments import DEFAULT_SEGMENTER, SEGMENTERS

    p.add_argument("--segmenter", choices=SEGMENTERS, default=DEFAULT_SEGMENTER,
                   help="--output: where utterances are cut. energy (default: best in steady "
                   "noise, bench/segmenters.py), silero (a voice-activity model shipped in "
                   "its wheel: music and other loud sounds that are not speech), ctc (the "
                   "model's own pauses in one pass: tightest on clean audio, for models "
                   "trained on noisy speech)")
    _output_place_args(p)
    p.add_argument("--json", action="store_true", help="print JSON on stdout")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")


def _output_place_args(p: argparse.ArgumentParser) -> None:
    """Where timed outputs go (``transcribe --output``, ``align``), and replacing them."""
    p.add_argument("--into", metavar="FILE", help="add the tiers to a copy of this ELAN file "
                   "(.eaf) or TextGrid, every tier and setting of it kept: written as "
                   "FILE_STEM.RUN.eaf (or .TextGrid) beside it or in -o; FILE itself is never "
                   "changed")
    p.add_argument("-o", "--out-dir", help="folder for the output files (default: beside "
                   "each recording)")
    p.add_argument("--force", action="store_true",
                   help="replace existing output files (never done without it)")


def _align_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("audio", help="the recording (any format, any length)")
    p.add_argument("transcript", help="plain text, UTF-8, one utterance a line; or an ELAN "
                   "file (.eaf) whose tier (--tier) has the text but no usable times")
    p.add_argument("--tier", help="the ELAN tier holding the transcript (needed when several "
                   "tiers have text)")
    p.add_argument("--model", required=True,
                   help="model directory, run directory, or run id in the workspace (-w)")
    p.add_argument("-w", "--workspace", default=".",
                   help="workspace whose orthography profile spells the transcript")
    p.add_argument("--output", metavar="FORMAT",
                   help="txt, json, tsv, srt, vtt, textgrid (default; for an ELAN "
                   "transcript: into a copy of it, as --into), eaf, or audiofolder (clips "
                   "and metadata.csv in RECORDING_clips/, for `workbench prepare`)")
    _output_place_args(p)
    p.add_argument("--keep-flagged", action="store_true",
                   help="audiofolder: keep lines flagged as not found, marked in the table "
                   "(left out by default: their times are most likely wrong)")
    p.add_argument("--min-confidence", type=float, default=0.7,
                   help="lines aligned with less are flagged as not in the recording "
                   "(default 0.7)")
    p.add_argument("--json", action="store_true", help="print JSON on stdout")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress messages")


def _lm_args(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="lm_command", required=True, metavar="ACTION")
    build = sub.add_parser("build", help="estimate an n-gram LM from text files",
                           description="Estimate a modified Kneser-Ney n-gram LM from text, "
                           "normalised with the workspace's orthography profile, into WS/lm/NAME.")
    build.set_defaults(handler=cmd_lm_build)
    build.add_argument("text", nargs="*", help="plain-text files, one sentence or paragraph a line")
    _common(build)
    build.add_argument("--name", default="default", help="the LM's name (default: default)")
    build.add_argument("--order", type=int, default=0,
                       help="n-gram order (default 3 for words, 6 for characters)")
    build.add_argument("--unit", choices=["word", "char"], default="word",
                       help="word: a lexicon decoder, words of the text only; char: open "
                       "vocabulary, for languages where new speech has many unseen words")
    build.add_argument("--transcripts", action="store_true",
                       help="add the training split's transcripts to the text")
    build.add_argument("--allow-leakage", action="store_true",
                       help="keep lines that contain dev or test transcripts (scores will lie)")
    build.add_argument("--max-words", type=int, default=2_000_000,
                       help="stop reading after this many words (memory grows with it; "
                       "0: no limit)")
    tune = sub.add_parser("tune", help="choose alpha and beta on the dev split",
                          description="Search the LM weight (alpha) and word bonus (beta) on the "
                          "dev split, store the best with the LM, and report greedy against LM "
                          "decoding on dev and test.")
    tune.set_defaults(handler=cmd_lm_tune)
    _common(tune)
    tune.add_argument("--lm", default="default", help="the LM's name (default: default)")
    tune.add_argument("--run", help="run id (default: the latest run with a model)")
    tune.add_argument("--beam", type=int, default=50, help="beam width (default 50)")


def _export_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", metavar="RUN_OR_MODEL",
                   help="run folder, model folder, run id in the workspace (-w), or (with "
                   "--int8) an fp32 ONNX export folder")
    p.add_argument("--onnx", action="store_true",
                   help="export to ONNX for ONNX Runtime (model.onnx with the processor files)")
    p.add_argument("--int8", action="store_true",
                   help="int8 weights on the matrix multiplications (smaller, faster on CPU)")
    p.add_argument("-o", "--out", help="output folder (default: RUN/onnx or RUN/onnx-int8, "
                   "or MODEL-onnx[-int8] beside a model folder)")
    p.add_argument("-w", "--workspace", default=".", help="workspace holding the run")
    p.add_argument("--lm", help="carry this language model of the workspace in the export "
                   "(lm/), so that transcribe uses it")
    p.add_argument("--language", default="und",
                   help="language code for the model card (ISO 639, e.g. qu; default und)")
    p.add_argument("--json", action="store_true", help="print JSON on stdout")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress output")


def _demo_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("-w", "--workspace", default="demo_workspace",
                   help="where to build the demo workspace (default: ./demo_workspace)")
    p.add_argument("--max-steps", type=int, default=0, help="training steps (default: preset)")
    p.add_argument("--max-minutes", type=float, default=0.0, help="limit the training time")
    p.add_argument("--json", action="store_true", help="print JSON on stdout")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")


def _ui_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("-w", "--workspace", help="workspace opened by default (created if missing)")
    p.add_argument("--root", help="folder whose workspaces the page may open and create, by "
                   "name (default: the parent of -w, else ./workspaces)")
    p.add_argument("--host", default="127.0.0.1",
                   help="interface to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    p.add_argument("--share", action="store_true",
                   help="also make a public *.gradio.live link (off by default)")
    p.add_argument("--auth", metavar="USER:PASS", action="append",
                   help="ask for this user and password; repeat it for several users, who "
                   "then each work in their own folder ROOT/USER")
    p.add_argument("--auth-file", metavar="FILE",
                   help="accounts, one USER:PASS per line (# starts a comment); as --auth")
    p.add_argument("--allow-host", metavar="NAME", action="append",
                   help="also answer to this host name (e.g. a reverse proxy's); by default "
                   "the page answers only to localhost, 127.0.0.1, [::1] and --host")
    p.add_argument("--max-file-size", default="4gb", help="largest upload (default 4gb)")
    p.add_argument("--models-dir", help="folder of local checkpoints offered for training, "
                   "one folder each (default: ROOT/models)")


PAGE_MESSAGE = "page message: "  # a UI job's error in the page's words, after its error line


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``workbench`` console script."""
    if os.environ.get("WORKBENCH_JOB"):  # a UI job (own session): SIGINT stops it cleanly
        signal.signal(signal.SIGINT, signal.default_int_handler)
    args = build_parser().parse_args(argv)
    try:
        args.handler(args)
    except WorkbenchError as err:
        print(f"error: {err}", file=sys.stderr)
        if err.page and os.environ.get("WORKBENCH_JOB"):  # the page shows its own wording
            print(f"{PAGE_MESSAGE}{err.page}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("interrupted; `workbench train --resume` continues a training run.",
              file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as err:  # noqa: BLE001 - last resort: a message, not a traceback
        if os.environ.get("WORKBENCH_DEBUG"):
            raise
        print(f"error: unexpected {type(err).__name__}: {err}\n"
              "This is a bug in the workbench; rerun with WORKBENCH_DEBUG=1 and report the "
              "traceback.", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
