"""Real public files from ../shared/data read in place: parsers and tokenizer on real genomes, promoters and reads."""

from __future__ import annotations

import numpy as np
import pytest

from genolm.kmers import UNK, KmerTokenizer
from genolm.seqio import read_fasta, read_fastq

pytestmark = pytest.mark.shared_data


def test_ecoli_genome_reads_and_tokenizes_without_loss(shared_data):
    path = shared_data / "ecoli_k12_mg1655" / "GCF_000005845.2_ASM584v2_genomic.fna.gz"
    records = list(read_fasta(path))
    assert [r.name for r in records] == ["NC_000913.3"]
    genome = records[0].sequence
    assert len(genome) == 4_641_652  # the published MG1655 length
    tokens = KmerTokenizer(k=6).encode(genome)
    assert tokens.size == len(genome) - 5  # every 6-mer, nothing dropped
    assert not np.any(tokens == UNK)  # the finished genome has no ambiguous base
    gc = (genome.count("G") + genome.count("C")) / len(genome)
    assert gc == pytest.approx(0.508, abs=0.001)


def test_cnnprom_ecoli_sets_have_the_published_counts(shared_data):
    folder = shared_data / "cnnprom_umarov2017"
    promoters = list(read_fasta(folder / "Ecoli_prom.fa"))
    non_promoters = list(read_fasta(folder / "Ecoli_non_prom.fa"))
    assert (len(promoters), len(non_promoters)) == (839, 3000)
    assert {len(r.sequence) for r in promoters} == {81}


def test_isfinder_sequences_parse_with_iupac_codes(shared_data):
    records = list(read_fasta(shared_data / "isfinder" / "ISfinder_IS_nt.fasta.gz"))
    assert len(records) == 6013
    assert len({r.name for r in records}) == 6013
    lengths = np.array([len(r.sequence) for r in records])
    assert 700 < np.median(lengths) < 2500  # IS elements are about 0.7-2.5 kb


def test_real_paired_reads_parse(shared_data):
    folder = shared_data / "fastq_small" / "palidis_SRR532173_subset"
    first = list(read_fastq(folder / "test_1.fastq.gz"))
    second = list(read_fastq(folder / "test_2.fastq.gz"))
    assert len(first) == len(second) == 429
