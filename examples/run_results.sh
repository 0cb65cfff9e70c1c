#!/usr/bin/env bash
# Produces the results of the README's command-line section (2 CPU cores, CPU torch).
# Every run is resumable: rerunning this script reuses finished runs and resumes the others.
#
#   bash examples/run_results.sh            # all of it
#   STEP=tu bash examples/run_results.sh    # one step: rebuild | tu | ogb | hiv
#   LIMIT=200 TU_DATASETS=MUTAG TU_FOLDS=1 OGB_DATASETS=ogbg-molbace OGB_SEEDS=0 TU_EPOCHS=5 \
#     OGB_EPOCHS=5 HIV_EPOCHS=5 MODELS=gin OUT=/tmp/r DATA=/tmp/d \
#     bash examples/run_results.sh          # a smoke run of every step (tests/test_run_results.py)
# Budget on this 2-core machine, 1 torch thread per run: the tu step takes days (a 10-fold
# PROTEINS or NCI1 pLSTM run alone takes about 3 hours), the ogb step about 2 hours per model.
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=${OUT:-runs/results}              # run folders, tables and plots
DATA=${DATA:-runs/data}               # OGB folders rebuilt offline from the MoleculeNet CSVs
SHARED=${SHARED:-../shared/data}      # real data beside the project (TU raw files, CSVs)
MODELS=${MODELS:-plstm,gin,gcn,gat,attention}
TU_DATASETS=${TU_DATASETS:-MUTAG,PTC_MR,PROTEINS,NCI1}
TU_EPOCHS=${TU_EPOCHS:-}              # empty: the tu family's default (100, the paper's protocol)
TU_FOLDS=${TU_FOLDS:-10}
TU_SEEDS=${TU_SEEDS:-0}
OGB_DATASETS=${OGB_DATASETS:-ogbg-molbace,ogbg-molbbbp,ogbg-molesol,ogbg-molfreesolv,ogbg-mollipo}
OGB_EPOCHS=${OGB_EPOCHS:-}            # empty: the ogb family's default (30)
OGB_SEEDS=${OGB_SEEDS:-0,1,2}
HIV_EPOCHS=${HIV_EPOCHS:-10}          # ogbg-molhiv: the budget this 2-core machine allows
LIMIT=${LIMIT:-}                      # a budget for smoke runs: N molecules per rebuilt set, N graphs per split
STEP=${STEP:-all}

case $STEP in all | rebuild | tu | ogb | hiv) ;; *)
  echo "run_results.sh: STEP must be all, rebuild, tu, ogb or hiv, got '$STEP'" >&2; exit 2 ;;
esac
LIMITED=${LIMIT:+--limit $LIMIT}
mkdir -p "$OUT"                       # first: every step writes there, some through tee

if [[ $STEP == all || $STEP == rebuild ]]; then
  for pair in bace:ogbg-molbace bbbp:ogbg-molbbbp delaney:ogbg-molesol freesolv:ogbg-molfreesolv \
              lipo:ogbg-mollipo hiv:ogbg-molhiv; do
    csv=${pair%%:*}; name=${pair#*:}
    [[ -d $DATA/${name//-/_} ]] || plstm-graph data rebuild-ogb "$name" --csv "$SHARED/moleculenet/$csv.csv.gz" \
      --root "$DATA" $LIMITED
  done
fi

# Every other setting is the dataset family's default (plstm_graph/train/defaults.py).
if [[ $STEP == all || $STEP == tu ]]; then   # the paper's 10 folds; mean ± std over folds x seeds
  plstm-graph compare --dataset "$TU_DATASETS" --models "$MODELS" --seeds "$TU_SEEDS" --folds "$TU_FOLDS" \
    ${TU_EPOCHS:+--epochs $TU_EPOCHS} --data-root "$SHARED" --out "$OUT/tu" --no-progress $LIMITED
fi

if [[ $STEP == all || $STEP == ogb ]]; then  # scaffold split, mean ± std over seeds
  plstm-graph compare --dataset "$OGB_DATASETS" --models "$MODELS" --seeds "$OGB_SEEDS" \
    ${OGB_EPOCHS:+--epochs $OGB_EPOCHS} --data-root "$DATA" --out "$OUT/ogb" --no-progress $LIMITED
fi

if [[ $STEP == all || $STEP == hiv ]]; then  # one training epoch each (same width and depth), then training
  python benchmarks/epoch_time.py --dataset ogbg-molhiv --data-root "$DATA" --models plstm,gin \
    --hidden 64 --layers 4 --heads 4 $LIMITED | tee "$OUT/molhiv_epoch_time.md"
  plstm-graph compare --dataset ogbg-molhiv --models plstm,gin --seeds 0 --epochs "$HIV_EPOCHS" \
    --data-root "$DATA" --out "$OUT/hiv" --no-progress $LIMITED
fi
