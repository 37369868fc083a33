"""Hamiltonian builders and exports."""
