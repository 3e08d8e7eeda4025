"""Run ``gpukpm response`` for several parts in one process (one import of gpukpm instead of one per part).

    python response_parts.py MOMENTS.h5 PREFIX --parts total sea surface -- [gpukpm response options]

writes PREFIX/{part}.h5 and PREFIX/{part}.csv; the options after ``--`` go to every call unchanged.
"""
import sys

from gpukpm.run.cli import main


def run(argv) -> int:
    if "--" not in argv or "--parts" not in argv:
        raise SystemExit(__doc__)
    split = argv.index("--")
    head, options = argv[:split], argv[split + 1:]
    moments, prefix = head[0], head[1]
    parts = head[head.index("--parts") + 1:]
    for part in parts:
        rc = main(["response", moments, "--part", part, "-o", f"{prefix}/{part}.h5", "--csv", f"{prefix}/{part}.csv",
                   *options])
        if rc:
            return rc
    return 0


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
