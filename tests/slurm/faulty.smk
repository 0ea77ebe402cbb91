# Rules that misbehave on purpose, for tests/slurm/test_slurm_failures.py.
# Run with a SLURM profile: snakemake -s tests/slurm/faulty.smk --profile ... fails | sleeps


rule fails:
    output:
        "fails.txt",
    log:
        "logs/fails.log",
    threads: 1
    resources:
        mem_mb=200,
        runtime=5,
    shell:
        "echo 'lungsynth slurm test: this rule fails on purpose' > {log}; exit 1"


rule sleeps:
    output:
        "sleeps.txt",
    threads: 1
    resources:
        mem_mb=200,
        runtime=15,
    shell:
        "sleep 600; touch {output}"
