"""Train the answer-finder that rag ships (rag/models/weights/answer-finder).

A LoRA adapter (peft) on the packaged all-MiniLM-L6-v2 encoder, with two heads: one
scores a (question, sentence) pair for "this sentence holds the answer", the other
marks the answer span in it. Trained on the SQuAD paragraphs of ../shared/data/squad-tune
(CC BY-SA 4.0) of the "train" articles only (scripts/squad.py splits whole articles):

- positives: the sentences of the gold paragraph that hold a gold answer;
- negatives: the gold paragraph's other sentences, and the sentences most similar to
  the question from the retrieved paragraphs that do not hold the answer.

Then a two-number calibration (Platt scaling) is fitted on the "dev" articles, and the
script prints its figures on the "test" articles, beside today's ranking of sentences
(embedding similarity + word overlap, rag.answer.sentences). Seeded; on a 2-core CPU
it takes about half an hour.

The project's own why/how/definition/list/compare questions over the same paragraphs
(scripts/squad.py, SENTENCE_QUESTIONS) are measured on, the test articles' ones
reported apart. --sentence-repeat 2 also trains on the train articles' 515 (38.7 min):
held out, sentence choice as the engine ranks rose on them (dev 59.2 -> 66.7 %, test
57.3 -> 60.0 %) and on SQuAD (test EM 44.0 -> 45.5), but on the project's user-style
questions it fell (foundation-models 64.2 -> 56.7 %, PostgreSQL manual 31.2 -> 25.0 %
right with abstention off), so the shipped finder is trained without them.

    python scripts/train_finder.py                   # writes the shipped files
    python scripts/train_finder.py --out /tmp/finder --questions 300 --epochs 1  # quick
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
from squad import (
    DEFAULT_DATA,
    ROOT,
    SENTENCE_QUESTIONS,
    answered_by,
    best_f1,
    exact,
    holds,
    sentence_questions,
    split_articles,
)

OUT = ROOT / "rag" / "models" / "weights" / "answer-finder"


def sentences_of(text: str) -> list[str]:
    from rag.text import sentence_spans

    return [text[s:e] for s, e in sentence_spans(text)]


def build_pairs(
    questions: list[dict[str, Any]],
    paragraphs: dict[str, str],
    embedder: Any,
    rng: random.Random,
    gold_negatives: int,
    hard_negatives: int,
    retrieved: int,
) -> list[tuple[str, str, int, str | None]]:
    """(question, sentence, label, answer) for training; ``answer`` is the span to mark,
    None for negatives and for sentences that answer whole."""
    ids = sorted(paragraphs)
    vectors = embedder.embed([paragraphs[i] for i in ids])
    asked = embedder.embed([q["question"] for q in questions])
    sentence_cache: dict[str, list[str]] = {i: sentences_of(paragraphs[i]) for i in ids}
    flat = [s for i in ids for s in sentence_cache[i]]
    flat_vectors = embedder.embed(flat)
    at, first = 0, {}
    for i in ids:
        first[i] = at
        at += len(sentence_cache[i])
    pairs: list[tuple[str, str, int, str | None]] = []
    for q, qv in zip(questions, asked):
        gold = sentence_cache[q["context_id"]]
        if "answers" in q:
            positive = [(s, a) for s in gold if (a := holds(s, q["answers"]))][:2]
        else:  # answered by whole sentences: no span to mark
            positive = [(s, None) for s in gold if answered_by(q, s)][:3]
        if not positive:
            continue  # the answer runs across sentences
        pairs += [(q["question"], s, 1, a) for s, a in positive]
        others = [s for s in gold if not answered_by(q, s)]
        pairs += [
            (q["question"], s, 0, None)
            for s in rng.sample(others, min(gold_negatives, len(others)))
        ]
        top = [ids[i] for i in np.argsort(-(vectors @ qv))[: retrieved + 1]]
        near = [
            j
            for p in top
            if p != q["context_id"]
            for j in range(first[p], first[p] + len(sentence_cache[p]))
            if not answered_by(q, flat[j])
        ]
        if near:
            sims = flat_vectors[near] @ qv
            pairs += [
                (q["question"], flat[near[i]], 0, None) for i in np.argsort(-sims)[:hard_negatives]
            ]
    return pairs


def encode(tokenizer: Any, batch: list[tuple[str, str, int, str | None]]) -> tuple[Any, Any, Any]:
    """Tokenized pairs, labels, and (start, end) token targets (-100 where no span)."""
    import torch

    from rag.models.finder import encode_pairs

    enc, offsets, _ = encode_pairs(tokenizer, [b[0] for b in batch], [b[1] for b in batch])
    targets = torch.full((len(batch), 2), -100, dtype=torch.long)
    for i, (_, sentence, _, answer) in enumerate(batch):
        if answer is None:
            continue
        a = sentence.index(answer)
        b = a + len(answer)
        seq = enc.sequence_ids(i)
        toks = [t for t, sid in enumerate(seq) if sid == 1]
        starts = [t for t in toks if offsets[i][t][0] <= a < offsets[i][t][1]]
        ends = [t for t in toks if offsets[i][t][0] < b <= offsets[i][t][1]]
        if starts and ends and starts[0] <= ends[-1]:
            targets[i] = torch.tensor([starts[0], ends[-1]])
    labels = torch.tensor([float(b[2]) for b in batch])
    return enc, labels, targets


def train(model: Any, tokenizer: Any, pairs: list[Any], args: argparse.Namespace) -> None:
    import torch

    rng = random.Random(args.seed)
    params = model.parameters()
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.01)
    steps = args.epochs * ((len(pairs) + args.batch - 1) // args.batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=args.lr, total_steps=steps, pct_start=0.06, anneal_strategy="linear"
    )
    bce = torch.nn.BCEWithLogitsLoss()
    ce = torch.nn.CrossEntropyLoss(ignore_index=-100)
    model.train()
    done, t0 = 0, time.perf_counter()
    for epoch in range(args.epochs):
        order = pairs[:]
        rng.shuffle(order)
        # batches of similar length, in random order: less padding
        chunks = [order[i : i + args.batch * 50] for i in range(0, len(order), args.batch * 50)]
        batches = []
        for chunk in chunks:
            chunk.sort(key=lambda p: len(p[0]) + len(p[1]))
            batches += [chunk[i : i + args.batch] for i in range(0, len(chunk), args.batch)]
        rng.shuffle(batches)
        for batch in batches:
            enc, labels, targets = encode(tokenizer, batch)
            with torch.autocast("cpu", dtype=torch.bfloat16):
                logit, start, end = model(**enc)
            loss = bce(logit.float(), labels)
            if (targets[:, 0] >= 0).any():
                loss = loss + 0.5 * (
                    ce(start.float(), targets[:, 0]) + ce(end.float(), targets[:, 1])
                )
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            sched.step()
            done += 1
            if done % 50 == 0:
                rate = done * args.batch / (time.perf_counter() - t0)
                print(
                    f"epoch {epoch + 1} step {done}/{steps} loss {loss.item():.3f} "
                    f"({rate:.0f} pairs/s)",
                    flush=True,
                )
    model.train(False)


def logits(
    model: Any, tokenizer: Any, question: str, texts: list[str]
) -> tuple[np.ndarray, list[Any]]:
    """Raw relevance logits and best spans, as the shipped finder computes them."""
    import torch

    from rag.models.finder import best_span, encode_pairs

    enc, offsets, second = encode_pairs(tokenizer, [question] * len(texts), texts)
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        logit, start, end = model(**enc)
    spans = [
        best_span(start[i].float(), end[i].float(), second[i], offsets[i])
        for i in range(len(texts))
    ]
    return logit.float().numpy(), spans


def evaluate(
    model: Any,
    tokenizer: Any,
    questions: list[dict[str, Any]],
    paragraphs: dict[str, str],
    embedder: Any,
    k: int,
) -> dict[str, Any]:
    """Per question: candidates from the top-k paragraphs (dense) with and without gold."""
    from rag.answer.sentences import rank_sentences

    ids = sorted(paragraphs)
    vectors = embedder.embed([paragraphs[i] for i in ids])
    asked = embedder.embed([q["question"] for q in questions])
    rows = []
    for q, qv in zip(questions, asked):
        order = [ids[i] for i in np.argsort(-(vectors @ qv))]
        with_gold = [q["context_id"], *[p for p in order if p != q["context_id"]][: k - 1]]
        without = [p for p in order if p != q["context_id"]][:k]
        texts = [paragraphs[p] for p in with_gold]
        cands = [s for t in texts for s in sentences_of(t)]
        if not cands or not any(answered_by(q, s) for s in cands):
            continue
        z, spans = logits(model, tokenizer, q["question"], cands)
        best = int(np.argmax(z))
        baseline = rank_sentences(q["question"], texts, embedder)[0].text
        neg = [s for p in without for s in sentences_of(paragraphs[p])]
        nz = logits(model, tokenizer, q["question"], neg)[0] if neg else np.array([-20.0])
        row = {
            "finder_right": answered_by(q, cands[best]),
            "baseline_right": answered_by(q, baseline),
            "max_with": float(z.max()),
            "max_without": float(nz.max()),
            "labels": [int(answered_by(q, s)) for s in cands],
            "logits": z.tolist(),
        }
        if "answers" in q:  # a span to read
            span = cands[best][spans[best].start : spans[best].end]
            gold_sents = sentences_of(paragraphs[q["context_id"]])
            gz, gspans = logits(model, tokenizer, q["question"], gold_sents)
            g = int(np.argmax(gz))
            gspan = gold_sents[g][gspans[g].start : gspans[g].end]
            row |= {
                "em": exact(span, q["answers"]),
                "f1": best_f1(span, q["answers"]),
                "gold_em": exact(gspan, q["answers"]),
                "gold_f1": best_f1(gspan, q["answers"]),
            }
        rows.append(row)
    return {"rows": rows}


def auc(pos: list[float], neg: list[float]) -> float:
    if not pos or not neg:
        return float("nan")
    p, n = np.array(pos)[:, None], np.array(neg)[None, :]
    return float((p > n).mean() + 0.5 * (p == n).mean())


def platt(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Scale and bias so that sigmoid(scale * x + bias) is calibrated on (x, y)."""
    a, b = 1.0, 0.0
    for _ in range(3000):
        p = 1 / (1 + np.exp(-(a * x + b)))
        a -= 0.05 * float(((p - y) * x).mean())
        b -= 0.05 * float((p - y).mean())
    return a, b


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--rank", type=int, default=16)
    ap.add_argument("--questions", type=int, default=0, help="train on this many (0: all)")
    ap.add_argument("--eval-questions", type=int, default=400)
    ap.add_argument("--gold-negatives", type=int, default=3)
    ap.add_argument("--hard-negatives", type=int, default=4)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--sentence-questions", type=Path, default=SENTENCE_QUESTIONS,
                    help="questions answered by whole sentences (scripts/squad.py)")  # fmt: skip
    ap.add_argument("--sentence-repeat", type=int, default=0,
                    help="times each of those is trained on per epoch (default 0: only "
                    "measured on; see the docstring)")  # fmt: skip
    args = ap.parse_args()

    import torch
    from transformers import AutoTokenizer

    from rag.models.embedder import SentenceTransformerEmbedder, packaged_embedder_path
    from rag.models.finder import CARD_FILE, FinderModel

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    rng = random.Random(args.seed)
    split = split_articles(args.data)
    corpus = [json.loads(line) for line in (args.data / "corpus.jsonl").open()]
    qa = [json.loads(line) for line in (args.data / "qa.jsonl").open()]
    part = {r["_id"]: split[r["_id"].rsplit("__", 1)[0]] for r in corpus}
    paragraphs = {
        name: {r["_id"]: r["text"] for r in corpus if part[r["_id"]] == name}
        for name in ("train", "dev", "test")
    }
    questions = {
        name: [q for q in qa if split[q["title"]] == name] for name in ("train", "dev", "test")
    }
    train_q = questions["train"]
    rng.shuffle(train_q)
    if args.questions:
        train_q = train_q[: args.questions]
    written = sentence_questions(args.data, args.sentence_questions)
    whole = {n: [q for q in written if split[q["title"]] == n] for n in ("train", "dev", "test")}
    train_q += whole["train"] * args.sentence_repeat

    base = packaged_embedder_path()
    embedder = SentenceTransformerEmbedder()
    t0 = time.perf_counter()
    pairs = build_pairs(
        train_q,
        paragraphs["train"],
        embedder,
        rng,
        args.gold_negatives,
        args.hard_negatives,
        retrieved=4,
    )
    positives = sum(p[2] for p in pairs)
    print(
        f"{len(pairs)} pairs ({positives} positive) from {len(train_q)} questions "
        f"({len(whole['train'])} answered by sentences, x{args.sentence_repeat}) of "
        f"{len(paragraphs['train'])} train paragraphs, {time.perf_counter() - t0:.0f}s"
    )

    tokenizer = AutoTokenizer.from_pretrained(base)
    model = FinderModel.fresh(base, rank=args.rank, alpha=2 * args.rank, dropout=0.1)
    t0 = time.perf_counter()
    train(model, tokenizer, pairs, args)
    minutes = (time.perf_counter() - t0) / 60
    print(f"trained in {minutes:.1f} min")

    sample = {
        n: random.Random(args.seed).sample(
            questions[n], min(args.eval_questions, len(questions[n]))
        )
        for n in ("dev", "test")
    }
    # calibrated on the kinds of question it was trained on
    dev_q = sample["dev"] + (whole["dev"] if args.sentence_repeat else [])
    dev = evaluate(model, tokenizer, dev_q, paragraphs["dev"], embedder, k=3)["rows"]
    x = np.array([v for r in dev for v in r["logits"]] + [r["max_without"] for r in dev])
    y = np.array([v for r in dev for v in r["labels"]] + [0] * len(dev))
    scale, bias = platt(x, y)
    test = evaluate(model, tokenizer, sample["test"], paragraphs["test"], embedder, k=3)["rows"]
    test_whole = evaluate(model, tokenizer, whole["test"], paragraphs["test"], embedder, k=3)[
        "rows"
    ]

    def pct(key: str, rows: list[dict[str, Any]] = test) -> float:
        return 100 * statistics.fmean(float(r[key]) for r in rows) if rows else float("nan")

    figures = {
        "test_questions": len(test),
        "sentence_choice_finder": round(pct("finder_right"), 1),
        "sentence_choice_baseline": round(pct("baseline_right"), 1),
        "span_em_top3": round(pct("em"), 1),
        "span_f1_top3": round(pct("f1"), 1),
        "span_em_gold_paragraph": round(pct("gold_em"), 1),
        "span_f1_gold_paragraph": round(pct("gold_f1"), 1),
        "abstention_auc": round(
            auc([r["max_with"] for r in test], [r["max_without"] for r in test]), 3
        ),
        "sentence_questions_test": len(test_whole),
        "sentence_questions_choice_finder": round(pct("finder_right", test_whole), 1),
        "sentence_questions_choice_baseline": round(pct("baseline_right", test_whole), 1),
        "sentence_questions_abstention_auc": round(
            auc([r["max_with"] for r in test_whole], [r["max_without"] for r in test_whole]), 3
        ),
    }
    print(
        f"held-out test articles, {len(test)} questions "
        "(top 3 paragraphs by dense retrieval, gold among them):"
    )
    print(
        f"  best sentence holds the answer: finder {figures['sentence_choice_finder']}%  "
        f"similarity+overlap (no finder) {figures['sentence_choice_baseline']}%"
    )
    f = figures
    print(
        f"  span from the best sentence: EM {f['span_em_top3']}  F1 {f['span_f1_top3']}; "
        f"gold paragraph only: EM {f['span_em_gold_paragraph']}  F1 {f['span_f1_gold_paragraph']}"
    )
    print(f"  answerable vs gold removed, best sentence's score: AUC {figures['abstention_auc']}")
    print(
        f"held-out test articles, {len(test_whole)} questions answered by whole sentences "
        f"(why, how, definition, list, compare):\n"
        f"  best sentence answers: finder {f['sentence_questions_choice_finder']}%  "
        f"similarity+overlap {f['sentence_questions_choice_baseline']}%; "
        f"answerable vs gold removed AUC {f['sentence_questions_abstention_auc']}"
    )
    print(f"calibration on dev articles: scale {scale:.3f} bias {bias:.3f}")

    model.save(args.out)
    config = args.out / "adapter_config.json"
    settings = json.loads(config.read_text())
    settings["base_model_name_or_path"] = "sentence-transformers/all-MiniLM-L6-v2"
    settings["target_modules"] = sorted(settings["target_modules"])  # peft keeps a set
    config.write_text(json.dumps(settings, indent=2, sort_keys=True) + "\n")
    (args.out / "README.md").unlink(missing_ok=True)
    card = {
        "base": None,
        "calibration": {"scale": round(scale, 4), "bias": round(bias, 4)},
        "trained_on": "SQuAD v1.1 (CC BY-SA 4.0), squad-tune train articles"
        + (
            ", and the project's own questions over them "
            "(scripts/data/squad-sentence-questions.jsonl)"
            if args.sentence_repeat
            else ""
        ),
        "articles": {
            n: sorted(t for t in split if split[t] == n) for n in ("train", "dev", "test")
        },
        "command": "python scripts/train_finder.py "
        + " ".join(
            f"--{k.replace('_', '-')} {v}"
            for k, v in vars(args).items()
            if k not in ("data", "out", "sentence_questions")
        ),
        "figures": figures,
        "pairs": len(pairs),
        "minutes": round(minutes, 1),
    }
    (args.out / CARD_FILE).write_text(json.dumps(card, indent=2) + "\n")
    size = sum(f.stat().st_size for f in args.out.iterdir()) / 1e6
    print(f"wrote {args.out} ({size:.1f} MB)")


if __name__ == "__main__":
    main()
