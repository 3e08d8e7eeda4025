"""Response: KPM kernels and broadening, Kubo-Bastin reconstruction (total / Fermi sea /
Fermi surface), Kubo-Greenwood conductivity and the density of states, all from stored moments."""
