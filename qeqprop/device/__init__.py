"""EP on quantum devices: variationally prepared phases measured by PennyLane devices or Qiskit
backends, the nudge from measured outputs, noise mitigation and budget accounting.

    DeviceLoop(device, shots=None, mitigation=None)   the experiment loop (qeqprop.device.loop)
    device_gradient(learner, params, x, y, device)    one measured gradient with standard errors
    PennyLaneClient, QiskitClient, CountsClient       how circuits reach a device (bit order handled)
    ZeroNoiseExtrapolation(scale_factors)             Richardson ZNE by global folding
    Budget                                            shots, circuits, variational steps per gradient
    device_optimal_beta                               the MSE-optimal beta on a (noisy) device
    readout_rotations, basis_circuit, phase_circuits  the circuits themselves

``qeqprop.fit(learner, data, device=dev)`` trains through a DeviceLoop.
"""

from .beta import device_optimal_beta
from .bit_order import BitOrderError, check_bit_order
from .budget import COUNTERS, Budget
from .circuits import basis_circuit, phase_circuits, readout_rotations
from .clients import Client, CountsClient, PennyLaneClient, QiskitClient, as_client
from .loop import DeviceGradient, DeviceLoop, as_loop, device_gradient
from .mitigation import ZeroNoiseExtrapolation
from .readout import DeviceMeasurement, DeviceReadout

__all__ = [
    "COUNTERS", "BitOrderError", "Budget", "Client", "CountsClient", "DeviceGradient", "DeviceLoop",
    "DeviceMeasurement", "DeviceReadout", "PennyLaneClient", "QiskitClient", "ZeroNoiseExtrapolation",
    "as_client", "as_loop", "basis_circuit", "check_bit_order", "device_gradient", "device_optimal_beta", "phase_circuits",
    "readout_rotations",
]
