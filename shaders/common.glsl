// Shared declarations for every snlvk kernel.
#extension GL_EXT_control_flow_attributes : enable

// Every kernel's workgroup size is specialised at pipeline creation (ids 100..102).
layout(local_size_x_id = 100, local_size_y_id = 101, local_size_z_id = 102) in;
