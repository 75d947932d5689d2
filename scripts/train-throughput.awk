# Images per second of a `visage train` run from its metrics.jsonl, after `warm` warm-up
# steps: (last - warm) * batch / (elapsed_s at last - elapsed_s at warm). Needs every step
# logged (`[train] log_every = 1`).
#   awk -v warm=5 -v batch=128 -f scripts/train-throughput.awk RUN/metrics.jsonl
{
    if (match($0, /"step":[0-9]+/)) step = substr($0, RSTART + 7, RLENGTH - 7) + 0
    if (match($0, /"elapsed_s":[0-9.eE+-]+/)) t[step] = substr($0, RSTART + 12, RLENGTH - 12) + 0
    last = step
}
END {
    if (last > warm && (warm in t) && t[last] > t[warm])
        printf "%.1f img/s over steps %d-%d (batch %d, %.2f s a step)\n",
            (last - warm) * batch / (t[last] - t[warm]), warm + 1, last, batch,
            (t[last] - t[warm]) / (last - warm)
    else
        printf "no timing: %d steps logged, %d warm-up\n", last, warm
}
