#!/usr/bin/env bash
# Produces the results of the README's command-line section (2 CPU cores, CPU torch).
# Every run is resumable: rerunning this script reuses finished runs and resumes the others.
#
#   bash examples/run_results.sh            # all of it
#   STEP=tu bash examples/run_results.sh    # one step: rebuild | tu | ogb | hiv
#   LIMIT=200 TU_FOLDS=1 OGB_SEEDS=0 TU_EPOCHS=5 OGB_EPOCHS=5 MODELS=gin OUT=/tmp/r DATA=/tmp/d \
#     bash examples/run_results.sh          # a smoke run of every step (tests/test_run_results.py)
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=${OUT:-runs/results}              # run folders, tables and plots
DATA=${DATA:-runs/data}               # OGB folders rebuilt offline from the MoleculeNet CSVs
SHARED=${SHARED:-../shared/data}      # real data beside the project (TU raw files, CSVs)
MODELS=${MODELS:-plstm,gin,gcn,gat,attention}
TU_EPOCHS=${TU_EPOCHS:-20}
TU_BATCH=${TU_BATCH:-16}              # 16, not the paper's 64: more steps in the few epochs we can afford
TU_FOLDS=${TU_FOLDS:-10}
OGB_EPOCHS=${OGB_EPOCHS:-10}
OGB_BATCH=${OGB_BATCH:-64}
OGB_SEEDS=${OGB_SEEDS:-0,1,2}
LIMIT=${LIMIT:-}                      # a budget for smoke runs: N molecules per rebuilt set, N graphs per split
WIDTH="--hidden 64 --layers 4 --heads 4"
STEP=${STEP:-all}

case $STEP in all | rebuild | tu | ogb | hiv) ;; *)
  echo "run_results.sh: STEP must be all, rebuild, tu, ogb or hiv, got '$STEP'" >&2; exit 2 ;;
esac
LIMITED=${LIMIT:+--limit $LIMIT}
mkdir -p "$OUT"                       # first: every step writes there, some through tee

if [[ $STEP == all || $STEP == rebuild ]]; then
  for pair in bace:ogbg-molbace bbbp:ogbg-molbbbp hiv:ogbg-molhiv; do
    csv=${pair%%:*}; name=${pair#*:}
    [[ -d $DATA/${name//-/_} ]] || plstm-graph data rebuild-ogb "$name" --csv "$SHARED/moleculenet/$csv.csv.gz" \
      --root "$DATA" $LIMITED
  done
fi

if [[ $STEP == all || $STEP == tu ]]; then   # 10-fold protocol, one seed, mean ± std over folds
  plstm-graph compare --dataset MUTAG,PTC_MR --models "$MODELS" --seeds 0 --folds "$TU_FOLDS" \
    --epochs "$TU_EPOCHS" --batch-size "$TU_BATCH" $WIDTH --data-root "$SHARED" --out "$OUT/tu" --no-progress $LIMITED
fi

if [[ $STEP == all || $STEP == ogb ]]; then  # scaffold split, 3 seeds, mean ± std over seeds
  plstm-graph compare --dataset ogbg-molbace,ogbg-molbbbp --models "$MODELS" --seeds "$OGB_SEEDS" \
    --epochs "$OGB_EPOCHS" --batch-size "$OGB_BATCH" $WIDTH --data-root "$DATA" --out "$OUT/ogb" --no-progress $LIMITED
fi

if [[ $STEP == all || $STEP == hiv ]]; then  # one training epoch each, same width and depth
  python benchmarks/epoch_time.py --dataset ogbg-molhiv --data-root "$DATA" --models plstm,gin \
    --hidden 64 --layers 4 --heads 4 $LIMITED | tee "$OUT/molhiv_epoch_time.md"
fi
