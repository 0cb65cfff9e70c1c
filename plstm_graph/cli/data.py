"""``plstm-graph data``: list, inspect and rebuild benchmark datasets.

    plstm-graph data list [--data-root DIR]
    plstm-graph data info NAME [--data-root DIR] [--fold K]
    plstm-graph data rebuild-ogb NAME --csv PATH [--root DIR] [--overwrite] [--limit N] [--force]

``--data-root`` (and ``PLSTM_GRAPH_DATA_ROOT``) may list several folders separated by
``os.pathsep`` (``:`` on Linux and macOS), searched in order.
"""
import os

ROOT_HELP = (f"data root, or several separated by '{os.pathsep}', searched in order "
             f"(default: $PLSTM_GRAPH_DATA_ROOT, else datasets/)")


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("data", help="list, inspect and rebuild benchmark datasets",
                                   description="List, inspect and rebuild benchmark datasets.")
    actions = parser.add_subparsers(dest="data_command", metavar="ACTION", required=True)

    listing = actions.add_parser("list", help="print the dataset names and where their files are")
    listing.add_argument("--data-root", help=ROOT_HELP)
    listing.set_defaults(func=_list)

    info = actions.add_parser("info", help="load a dataset and print its size, task and split sizes")
    info.add_argument("name", help="a name from `plstm-graph data list`, or tu:NAME")
    info.add_argument("--data-root", help=ROOT_HELP)
    info.add_argument("--fold", type=int, default=None, help="fold of a TU dataset (0..9; default 0)")
    info.add_argument("--no-download", action="store_true", help="fail instead of downloading")
    info.set_defaults(func=_info)

    rebuild = actions.add_parser(
        "rebuild-ogb", help="rebuild an OGB molecule dataset offline from a MoleculeNet CSV",
        description="Write OGB's folder for NAME (mapping/, raw/, split/scaffold/, RELEASE_v1.txt) "
                    "under ROOT from a MoleculeNet CSV, featurised with ogb.utils.smiles2graph and "
                    "split by Bemis-Murcko scaffold as OGB did.")
    rebuild.add_argument("name", help="OGB dataset name, e.g. ogbg-molbace")
    rebuild.add_argument("--csv", required=True,
                         help="MoleculeNet CSV, e.g. ../shared/data/moleculenet/bace.csv.gz")
    rebuild.add_argument("--root", help="data root to write into; of a list, the first writable one "
                                        "(default: as --data-root)")
    rebuild.add_argument("--smiles-column", help="SMILES column (default: 'smiles' or 'mol', else the first)")
    rebuild.add_argument("--target-columns", nargs="+", help="label columns (default: all others)")
    rebuild.add_argument("--overwrite", action="store_true", help="replace an existing folder")
    rebuild.add_argument("--limit", type=int, metavar="N",
                         help="only the first N molecules: a small folder for quick checks")
    rebuild.add_argument("--force", action="store_true",
                         help="rebuild even if the CSV's label column or row count is not the dataset's")
    rebuild.set_defaults(func=_rebuild)


def _list(args) -> int:
    from plstm_graph.data import dataset_names, ogb, tu
    from plstm_graph.data.root import describe_roots

    print(f"data root: {describe_roots(args.data_root)}")
    rows = [("name", "source", "task", "metric", "on disk")]
    for name in dataset_names():
        if name in ogb.OGB_MOLECULE_DATASETS:
            meta, folder = ogb.ogb_meta(name), ogb.find_ogb_folder(name, args.data_root)
            tasks = int(meta["num tasks"])
            task = f"{meta['task type']} ({tasks} task{'s' if tasks > 1 else ''})"
            metric = meta["eval metric"]
            rebuildable = ogb.OGB_MOLECULE_DATASETS[name] is not None
            where = str(folder) if folder is not None else (
                "missing: download, or rebuild-ogb" if rebuildable else "missing: download")
            rows.append((name, "OGB", task, metric, where))
        elif name in tu.TU_DATASETS:
            raw = tu.find_tu_raw(name, args.data_root)
            rows.append((name, "TU", "multiclass classification (10 folds)", "acc",
                         str(raw) if raw else "missing: download"))
        elif name == "tpsa":
            rows.append((name, "rdkit", "regression (1 task)", "rmse", "embedded (default)"))
        else:  # described by its loader: loading is the only way to know
            rows.append((name, "files", "-", "-", f"see: plstm-graph data info {name}"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[-1])
    return 0


def _info(args) -> int:
    from plstm_graph.data import get_dataset

    kwargs = {"download": False} if args.no_download else {}
    ds = get_dataset(args.name, root=args.data_root, **kwargs)
    fold = args.fold if args.fold is not None or ds.num_folds == 1 else 0
    split = ds.split(fold)
    graphs = len(ds.dataset)
    outputs = "classes" if ds.task_type == "multiclass classification" else "task(s)"
    print(f"{ds.name}: {graphs} graphs, {ds.task_type} with {ds.num_tasks} {outputs}, metric "
          f"{ds.metric} ({'higher' if ds.higher_is_better else 'lower'} is better)")
    print(f"features: {ds.features} (node {ds.num_node_features}, edge {ds.num_edge_features})")
    where = f"fold {fold} of {ds.num_folds}" if ds.num_folds > 1 else "split"
    print(f"{where}: " + ", ".join(f"{part} {len(index)}" for part, index in split.items()))
    return 0


def _rebuild(args) -> int:
    from plstm_graph.data import rebuild_ogb

    report = rebuild_ogb(args.name, args.csv, args.root, smiles_column=args.smiles_column,
                         target_columns=args.target_columns, overwrite=args.overwrite,
                         limit=args.limit, force=args.force)
    print(f"wrote {report.folder}: {report.num_graphs} molecules, scaffold split "
          + " / ".join(f"{part} {size}" for part, size in report.split_sizes.items())
          + f", in {report.seconds:.1f} s")
    if report.partially_sanitized:
        print(f"kept {len(report.partially_sanitized)} SMILES that this rdkit rejects for valence "
              f"(partial sanitisation), rows: {report.partially_sanitized}")
    return 0

